import Foundation

/// Draws a plan comparison as an SVG of small multiples: one panel per quality measure
/// (perplexity, each task's accuracy) against speed or compute, each plan a labelled point,
/// the Pareto frontier (plans nothing else beats on both axes) joined by a line.
public enum ParetoChart {
    /// What the horizontal axis shows.
    public enum Axis: String, Sendable, CaseIterable {
        /// Generation tokens/s relative to the full model (higher is better).
        case speed
        /// Fraction of layer compute kept (lower is cheaper).
        case compute
    }

    private struct Metric {
        var title: String
        var higherIsBetter: Bool
        var value: (PlanComparisonEntry) -> Double?
    }

    private static let panelWidth = 420.0
    private static let panelHeight = 300.0
    private static let margin = (left: 62.0, right: 24.0, top: 34.0, bottom: 46.0)
    private static let columns = 2
    /// Height of the title and legend above the panels.
    private static let header = 58.0

    /// The chart as a standalone SVG document.
    public static func svg(_ report: PlanComparisonReport, x axis: Axis) -> String {
        let x: (PlanComparisonEntry) -> Double? = axis == .speed ? { $0.speedRatio } : { $0.computeFraction }
        var metrics = [Metric(title: "perplexity (lower is better)", higherIsBetter: false, value: { $0.perplexity?.perplexity })]
        let tasks = report.entries.flatMap(\.tasks).map(\.task)
        for task in EvaluationTask.allCases where tasks.contains(task) {
            metrics.append(Metric(title: "\(task.rawValue) accuracy", higherIsBetter: true, value: { $0.report(for: task)?.accuracy }))
        }
        metrics = metrics.filter { metric in report.entries.contains { metric.value($0) != nil && x($0) != nil } }
        let columnCount = min(columns, max(1, metrics.count))
        let rows = (metrics.count + columnCount - 1) / columnCount
        let width = panelWidth * Double(columnCount)
        let height = header + panelHeight * Double(max(1, rows))
        let xTitle = axis == .speed ? "generation speed relative to the full model (×)" : "fraction of layer compute kept"
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(format(width))" height="\(format(height))" \
            viewBox="0 0 \(format(width)) \(format(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(format(width / 2))" y="24" font-size="16" font-weight="bold" text-anchor="middle">\
            \(escape(report.model)): quality against \(axis == .speed ? "speed" : "compute")\
            \(report.limit.map { " (first \($0) documents per task)" } ?? "")</text>
            <text x="\(format(width / 2))" y="44" font-size="11" text-anchor="middle" fill="#444">\
            <tspan fill="#c53030">● full model</tspan>   <tspan fill="#2b6cb0">● on the Pareto frontier (dashed: \
            nothing beats it on both axes)</tspan>   <tspan fill="#718096">● dominated</tspan></text>

            """
        if metrics.isEmpty {
            svg += "<text x=\"20\" y=\"70\" font-size=\"13\">nothing to draw: no plan has both measures</text>\n"
        }
        for (index, metric) in metrics.enumerated() {
            let originX = panelWidth * Double(index % columnCount)
            let originY = header + panelHeight * Double(index / columnCount)
            svg += panel(report.entries, metric: metric, x: x, higherXIsBetter: axis == .speed, xTitle: xTitle,
                         originX: originX, originY: originY)
        }
        return svg + "</svg>\n"
    }

    private static func panel(
        _ entries: [PlanComparisonEntry], metric: Metric, x: (PlanComparisonEntry) -> Double?, higherXIsBetter: Bool,
        xTitle: String, originX: Double, originY: Double
    ) -> String {
        let points = entries.compactMap { entry -> (entry: PlanComparisonEntry, x: Double, y: Double)? in
            guard let xValue = x(entry), let yValue = metric.value(entry), xValue.isFinite, yValue.isFinite else { return nil }
            return (entry, xValue, yValue)
        }
        let left = originX + margin.left, right = originX + panelWidth - margin.right
        let top = originY + margin.top, bottom = originY + panelHeight - margin.bottom
        let xScale = Scale(values: points.map(\.x), from: left, to: right)
        let yScale = Scale(values: points.map(\.y), from: bottom, to: top)
        var svg = "<g>\n<text x=\"\(format(left))\" y=\"\(format(originY + 22))\" font-size=\"13\" font-weight=\"bold\">\(escape(metric.title))</text>\n"
        svg += "<rect x=\"\(format(left))\" y=\"\(format(top))\" width=\"\(format(right - left))\" height=\"\(format(bottom - top))\" fill=\"#fafafa\" stroke=\"#999\"/>\n"
        for tick in xScale.ticks {
            let position = xScale.position(tick)
            svg += "<line x1=\"\(format(position))\" y1=\"\(format(top))\" x2=\"\(format(position))\" y2=\"\(format(bottom))\" stroke=\"#e4e4e4\"/>\n"
            svg += "<text x=\"\(format(position))\" y=\"\(format(bottom + 15))\" font-size=\"11\" text-anchor=\"middle\" fill=\"#444\">\(xScale.label(tick))</text>\n"
        }
        for tick in yScale.ticks {
            let position = yScale.position(tick)
            svg += "<line x1=\"\(format(left))\" y1=\"\(format(position))\" x2=\"\(format(right))\" y2=\"\(format(position))\" stroke=\"#e4e4e4\"/>\n"
            svg += "<text x=\"\(format(left - 6))\" y=\"\(format(position + 4))\" font-size=\"11\" text-anchor=\"end\" fill=\"#444\">\(yScale.label(tick))</text>\n"
        }
        svg += "<text x=\"\(format((left + right) / 2))\" y=\"\(format(bottom + 34))\" font-size=\"11\" text-anchor=\"middle\" fill=\"#222\">\(escape(xTitle))</text>\n"

        // A point is on the frontier when no other point is at least as good on both axes and
        // better on one.
        func better(_ a: Double, _ b: Double, higher: Bool) -> Bool { higher ? a > b : a < b }
        let frontier = points.filter { point in
            !points.contains { other in
                !better(point.x, other.x, higher: higherXIsBetter) && !better(point.y, other.y, higher: metric.higherIsBetter)
                    && (better(other.x, point.x, higher: higherXIsBetter) || better(other.y, point.y, higher: metric.higherIsBetter))
            }
        }.sorted { $0.x < $1.x }
        if frontier.count > 1 {
            let path = frontier.map { "\(format(xScale.position($0.x))),\(format(yScale.position($0.y)))" }.joined(separator: " ")
            svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"#2b6cb0\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/>\n"
        }
        for (point, labelY) in zip(points, labelPositions(points.map { yScale.position($0.y) }, top: top + 10, bottom: bottom - 4)) {
            let px = xScale.position(point.x), py = yScale.position(point.y)
            let isFull = point.entry.name == "full"
            let onFrontier = frontier.contains { $0.entry.name == point.entry.name }
            let color = isFull ? "#c53030" : onFrontier ? "#2b6cb0" : "#718096"
            svg += "<circle cx=\"\(format(px))\" cy=\"\(format(py))\" r=\"5\" fill=\"\(color)\" stroke=\"white\" stroke-width=\"1\"/>\n"
            let label = point.entry.method.map { $0 == point.entry.name ? $0 : "\(point.entry.name) (\($0))" } ?? point.entry.name
            // Labels go right of their point unless that would leave the panel.
            let rightSide = px + 8 + 6.2 * Double(label.count) < right
            let anchorX = rightSide ? px + 8 : px - 8
            if abs(labelY - py) > 3 {
                svg += "<line x1=\"\(format(px))\" y1=\"\(format(py))\" x2=\"\(format(anchorX))\" y2=\"\(format(labelY - 4))\" stroke=\"#bbb\"/>\n"
            }
            svg += "<text x=\"\(format(anchorX))\" y=\"\(format(labelY))\" font-size=\"11\" text-anchor=\"\(rightSide ? "start" : "end")\" fill=\"\(color)\">\(escape(label))</text>\n"
        }
        return svg + "</g>\n"
    }

    /// Baselines for the labels of points at heights `ys`: near their points, but at least 13
    /// pixels apart so labels of close points do not overprint.
    private static func labelPositions(_ ys: [Double], top: Double, bottom: Double) -> [Double] {
        let order = ys.indices.sorted { ys[$0] < ys[$1] }
        var placed = Array(repeating: 0.0, count: ys.count)
        var previous = -Double.infinity
        for index in order {
            let y = max(ys[index] + 4, previous + 13)
            placed[index] = min(max(y, top), bottom)
            previous = placed[index]
        }
        return placed
    }

    private static func format(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// A linear axis over some values with round tick marks.
private struct Scale {
    var low: Double, high: Double, from: Double, to: Double, step: Double

    init(values: [Double], from: Double, to: Double) {
        var low = values.min() ?? 0, high = values.max() ?? 1
        if high - low < 1e-9 { low -= max(abs(low) * 0.05, 0.01); high += max(abs(high) * 0.05, 0.01) }
        // 8% of room on both sides keeps points off the frame.
        let pad = (high - low) * 0.08
        low -= pad
        high += pad
        let raw = (high - low) / 5
        let magnitude = pow(10, floor(log10(raw)))
        step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        self.low = low
        self.high = high
        self.from = from
        self.to = to
    }

    func position(_ value: Double) -> Double { from + (value - low) / (high - low) * (to - from) }

    var ticks: [Double] {
        var result: [Double] = []
        var tick = (low / step).rounded(.up) * step
        while tick <= high + step * 1e-9 {
            result.append(tick)
            tick += step
        }
        return result
    }

    func label(_ tick: Double) -> String {
        let decimals = max(0, Int(-floor(log10(step) + 1e-9)) + (step / pow(10, floor(log10(step))) == 2.5 ? 1 : 0))
        var text = String(Int((abs(tick) * pow(10, Double(decimals))).rounded()))
        if decimals > 0 {
            while text.count <= decimals { text = "0" + text }
            text.insert(".", at: text.index(text.endIndex, offsetBy: -decimals))
        }
        return (tick < -step * 1e-9 ? "-" : "") + text
    }
}
