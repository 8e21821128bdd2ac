import Foundation

/// Inline SVG charts for the HTML reports: self-contained markup, no scripts, no external
/// files, so a report opens in any browser and can be mailed or committed as one file.
enum SVGChart {
    static let width = 640.0
    static let height = 280.0
    /// Plot area inside the chart: room on the left for tick labels, below for the axis title.
    static let left = 64.0, right = 16.0, top = 36.0, bottom = 48.0
    static var plotWidth: Double { width - left - right }
    static var plotHeight: Double { height - top - bottom }

    /// One bar per layer; negative values hang below the zero line.
    static func bars(title: String, yLabel: String, values: [Double], color: String, note: String? = nil) -> String {
        guard !values.isEmpty else { return "" }
        let low = min(values.min()!, 0)
        let high = max(values.max()!, low + 1e-12)
        let ticks = niceTicks(low: low, high: high)
        let (axisLow, axisHigh) = (ticks.first!, ticks.last!)
        func y(_ value: Double) -> Double { top + plotHeight * (1 - (value - axisLow) / (axisHigh - axisLow)) }
        let slot = plotWidth / Double(values.count)
        var body = frame(title: title, xLabel: "layer", yLabel: yLabel)
        body += yAxis(ticks: ticks.map { (y($0), format($0)) })
        body += layerTicks(count: values.count, slot: slot)
        for (layer, value) in values.enumerated() {
            let top = min(y(value), y(0)), size = abs(y(value) - y(0))
            body += #"<rect x="\#(f(left + Double(layer) * slot + slot * 0.12))" y="\#(f(top))" width="\#(f(slot * 0.76))" "#
                + #"height="\#(f(max(size, 0.5)))" fill="\#(color)"><title>layer \#(layer): \#(format(value))</title></rect>"#
        }
        // Bottom right, beside the short axis title: above the plot a long note runs into the title.
        if let note { body += text(note, x: width - right, y: height - 8, anchor: "end", size: 11, color: "#555") }
        return wrap(body)
    }

    /// Lines over layers on a log-scale y axis, with an optional dashed horizontal reference.
    static func logLines(title: String, yLabel: String, series: [(name: String, color: String, values: [Double])],
                         reference: (name: String, value: Double)?, xLabel: String = "layer removed") -> String {
        let all = series.flatMap(\.values).filter { $0 > 0 } + (reference.map { [$0.value] } ?? [])
        guard let count = series.map(\.values.count).max(), count > 0, let minimum = all.min(), let maximum = all.max() else {
            return ""
        }
        // Headroom above the highest point keeps the legend (drawn in the plot's top band) clear.
        let lowExponent = floor(log10(minimum)), highExponent = max(log10(maximum) + 0.6, lowExponent + 1)
        func y(_ value: Double) -> Double {
            // Every value >= 10^lowExponent except non-positive ones, which sit on the bottom edge.
            top + plotHeight * (1 - (max(log10(max(value, 1e-300)), lowExponent) - lowExponent) / (highExponent - lowExponent))
        }
        let slot = plotWidth / Double(count)
        func x(_ layer: Int) -> Double { left + (Double(layer) + 0.5) * slot }
        var ticks: [(Double, String)] = []
        for exponent in Int(lowExponent)...Int(highExponent) {
            for multiple in [1.0, 2, 5] where Double(exponent) + log10(multiple) <= highExponent {
                let value = multiple * pow(10, Double(exponent))
                // Intermediate ticks only when few decades are shown, so labels do not collide.
                let label = value >= 1e5 ? "1e\(exponent)".replacingOccurrences(of: "1e", with: multiple == 1 ? "1e" : "\(Int(multiple))e") : format(value)
                if multiple == 1 || highExponent - lowExponent <= 2 { ticks.append((y(value), label)) }
            }
        }
        var body = frame(title: title, xLabel: xLabel, yLabel: yLabel)
        body += yAxis(ticks: ticks)
        body += layerTicks(count: count, slot: slot)
        if let reference {
            body += #"<line x1="\#(f(left))" x2="\#(f(width - right))" y1="\#(f(y(reference.value)))" y2="\#(f(y(reference.value)))" "#
                + #"stroke="rgb(68,68,68)" stroke-dasharray="5,4"/>"#
        }
        for line in series where !line.values.isEmpty {
            let points = line.values.enumerated().map { "\(f(x($0.offset))),\(f(y($0.element)))" }.joined(separator: " ")
            body += #"<polyline points="\#(points)" fill="none" stroke="\#(line.color)" stroke-width="2"/>"#
            for (layer, value) in line.values.enumerated() {
                body += #"<circle cx="\#(f(x(layer)))" cy="\#(f(y(value)))" r="2.6" fill="\#(line.color)">"#
                    + #"<title>\#(escape(line.name)), layer \#(layer): \#(format(value))</title></circle>"#
            }
        }
        var entries = series.filter { !$0.values.isEmpty }.map { ($0.name, $0.color, false) }
        if let reference { entries.append((reference.name, "#444", true)) }
        body += legend(entries)
        return wrap(body)
    }

    /// A `[row][column]` grid of values in [0, 1]-ish, coloured on a sequential scale; nil
    /// cells are drawn hatched grey.
    static func heatmap(title: String, rowLabel: String, columnLabel: String, values: [[Double?]]) -> String {
        let rows = values.count, columns = values.map(\.count).max() ?? 0
        let known = values.flatMap { $0.compactMap { $0 } }
        guard rows > 0, columns > 0, let low = known.min(), let high = known.max() else { return "" }
        let chartWidth = 640.0, cell = min(28.0, (chartWidth - 170) / Double(columns)), cellHeight = 16.0
        let gridLeft = 64.0, gridTop = 40.0
        let chartHeight = gridTop + Double(rows) * cellHeight + 56
        var body = text(title, x: chartWidth / 2, y: 20, anchor: "middle", size: 15, weight: "600")
        body += #"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">"#
            + #"<rect width="6" height="6" fill="rgb(238,238,238)"/><line x1="0" y1="0" x2="0" y2="6" stroke="rgb(204,204,204)" stroke-width="2"/></pattern></defs>"#
        for (row, line) in values.enumerated() {
            for column in 0..<columns {
                let value = column < line.count ? line[column] : nil
                let fill = value.map { color(($0 - low) / max(high - low, 1e-12)) } ?? "url(#hatch)"
                let tip = value.map { "d(\(row), \(column + 1)) = \(format($0))" } ?? "l + n > L"
                body += #"<rect x="\#(f(gridLeft + Double(column) * cell))" y="\#(f(gridTop + Double(row) * cellHeight))" "#
                    + #"width="\#(f(cell))" height="\#(f(cellHeight))" fill="\#(fill)"><title>\#(tip)</title></rect>"#
            }
            if row % 2 == 0 || rows <= 32 {
                body += text("\(row)", x: gridLeft - 6, y: gridTop + (Double(row) + 0.75) * cellHeight, anchor: "end", size: 10)
            }
        }
        for column in 0..<columns where column % 2 == 0 || columns <= 16 {
            body += text("\(column + 1)", x: gridLeft + (Double(column) + 0.5) * cell, y: gridTop + Double(rows) * cellHeight + 14,
                         anchor: "middle", size: 10)
        }
        body += text(columnLabel, x: gridLeft + Double(columns) * cell / 2, y: gridTop + Double(rows) * cellHeight + 34,
                     anchor: "middle", size: 12)
        body += #"<text x="16" y="\#(f(gridTop + Double(rows) * cellHeight / 2))" font-size="12" text-anchor="middle" "#
            + #"transform="rotate(-90 16 \#(f(gridTop + Double(rows) * cellHeight / 2)))">\#(escape(rowLabel))</text>"#
        // Colour legend: a vertical gradient with the extreme values.
        let legendX = gridLeft + Double(columns) * cell + 40, legendHeight = min(200.0, Double(rows) * cellHeight)
        body += #"<defs><linearGradient id="scale" x1="0" y1="1" x2="0" y2="0">"#
            + stride(from: 0.0, through: 1.0, by: 0.25).map { #"<stop offset="\#($0)" stop-color="\#(color($0))"/>"# }.joined()
            + "</linearGradient></defs>"
        body += #"<rect x="\#(f(legendX))" y="\#(f(gridTop))" width="16" height="\#(f(legendHeight))" fill="url(#scale)"/>"#
        body += text(format(high), x: legendX + 22, y: gridTop + 10, anchor: "start", size: 11)
        body += text(format(low), x: legendX + 22, y: gridTop + legendHeight, anchor: "start", size: 11)
        body += text("d(l, n)", x: legendX, y: gridTop + legendHeight + 18, anchor: "start", size: 11)
        return #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(f(chartWidth))" height="\#(f(chartHeight))" "#
            + #"viewBox="0 0 \#(f(chartWidth)) \#(f(chartHeight))" font-family="sans-serif">\#(body)</svg>"#
    }

    // MARK: Pieces

    private static func wrap(_ body: String) -> String {
        #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(f(width))" height="\#(f(height))" viewBox="0 0 \#(f(width)) \#(f(height))" "#
            + #"font-family="sans-serif">\#(body)</svg>"#
    }

    private static func frame(title: String, xLabel: String, yLabel: String) -> String {
        text(title, x: left + plotWidth / 2, y: 20, anchor: "middle", size: 15, weight: "600")
            + #"<rect x="\#(f(left))" y="\#(f(top))" width="\#(f(plotWidth))" height="\#(f(plotHeight))" fill="rgb(250,250,250)" stroke="rgb(153,153,153)"/>"#
            + text(xLabel, x: left + plotWidth / 2, y: height - 8, anchor: "middle", size: 12)
            + #"<text x="14" y="\#(f(top + plotHeight / 2))" font-size="12" text-anchor="middle" "#
            + #"transform="rotate(-90 14 \#(f(top + plotHeight / 2)))">\#(escape(yLabel))</text>"#
    }

    private static func yAxis(ticks: [(Double, String)]) -> String {
        ticks.map { y, label in
            #"<line x1="\#(f(left))" x2="\#(f(width - right))" y1="\#(f(y))" y2="\#(f(y))" stroke="rgb(226,226,226)"/>"#
                + text(label, x: left - 6, y: y + 4, anchor: "end", size: 11)
        }.joined()
    }

    private static func layerTicks(count: Int, slot: Double) -> String {
        let every = count <= 16 ? 1 : count <= 40 ? 2 : 5
        return stride(from: 0, to: count, by: every).map { layer in
            text("\(layer)", x: left + (Double(layer) + 0.5) * slot, y: top + plotHeight + 15, anchor: "middle", size: 10)
        }.joined()
    }

    private static func legend(_ entries: [(name: String, color: String, dashed: Bool)]) -> String {
        var x = left + 10
        return entries.map { entry in
            defer { x += 26 + Double(entry.name.count) * 6.6 + 14 }
            return #"<line x1="\#(f(x))" x2="\#(f(x + 20))" y1="\#(f(top + 14))" y2="\#(f(top + 14))" stroke="\#(entry.color)" "#
                + #"stroke-width="2"\#(entry.dashed ? #" stroke-dasharray="5,4""# : "")/>"#
                + text(entry.name, x: x + 26, y: top + 18, anchor: "start", size: 11)
        }.joined()
    }

    static func text(_ content: String, x: Double, y: Double, anchor: String, size: Int,
                     weight: String = "normal", color: String = "#222") -> String {
        #"<text x="\#(f(x))" y="\#(f(y))" font-size="\#(size)" text-anchor="\#(anchor)" font-weight="\#(weight)" fill="\#(color)">"#
            + escape(content) + "</text>"
    }

    /// Tick values spanning low...high on a 1-2-5 step.
    static func niceTicks(low: Double, high: Double, count: Int = 5) -> [Double] {
        let raw = (high - low) / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        let first = floor(low / step) * step, last = ceil(high / step) * step
        return stride(from: first, through: last + step / 2, by: step).map { abs($0) < step * 1e-9 ? 0 : $0 }
    }

    /// A sequential colour scale (dark blue → teal → yellow) for t in [0, 1].
    static func color(_ t: Double) -> String {
        let stops: [(Double, Double, Double)] = [(0.27, 0.00, 0.33), (0.23, 0.32, 0.55), (0.13, 0.57, 0.55),
                                                 (0.37, 0.79, 0.38), (0.99, 0.91, 0.15)]
        let position = min(max(t, 0), 1) * Double(stops.count - 1)
        let index = min(Int(position), stops.count - 2), fraction = position - Double(index)
        let (a, b) = (stops[index], stops[index + 1])
        func channel(_ x: Double, _ y: Double) -> Int { Int(((x + (y - x) * fraction) * 255).rounded()) }
        return String(format: "#%02x%02x%02x", channel(a.0, b.0), channel(a.1, b.1), channel(a.2, b.2))
    }

    static func format(_ value: Double) -> String {
        if value == 0 { return "0" }
        let magnitude = abs(value)
        if magnitude >= 1e5 || magnitude < 1e-3 { return String(format: "%.2e", value) }
        if magnitude >= 100 { return String(format: "%.0f", value) }
        return String(format: "%.3g", value)
    }

    private static func f(_ value: Double) -> String { String(format: "%.1f", value) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
