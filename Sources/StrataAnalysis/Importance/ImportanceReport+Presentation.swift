import Foundation

extension ImportanceReport {
    /// A plain-text table, one row per layer, for the terminal.
    public func table() -> String {
        var columns: [(header: String, values: [Double])] = [
            ("BI", blockInfluence), ("LIM", lim), ("ZD", zd), ("attn ratio", attentionContribution),
            ("ffn ratio", ffnContribution), ("lens top1", logitLensAgreement), ("lens KL", logitLensKL),
            ("ppl -layer", perplexityWithoutLayer), ("ppl -attn", perplexityWithoutAttention), ("ppl -ffn", perplexityWithoutFFN),
        ]
        columns.removeAll { $0.values.count != layerCount }
        var lines = [String(format: "%@ — %d window%@ × %d tokens of %@", model, windows, windows == 1 ? "" : "s", context, text)]
        if let perplexityFull { lines.append(String(format: "full-model perplexity %.4f", perplexityFull)) }
        if let attentionSpans { lines.append("attention: " + attentionSpans + " (layers marked * are global)") }
        let widths = columns.map { max($0.header.count, 10) }
        lines.append("layer" + zip(columns, widths).map { " " + $0.header.leftPadded(to: $1) }.joined())
        for layer in 0..<layerCount {
            let global = slidingWindowLayers.map { !$0[layer] } ?? false
            lines.append((String(layer) + (global ? "*" : "")).leftPadded(to: 5) + zip(columns, widths).map { column, width in
                " " + SVGChart.format(column.values[layer]).leftPadded(to: width)
            }.joined())
        }
        if let maximumSpan = angularDistance.first?.count, maximumSpan > 0 {
            lines.append("angular distance: the block of n layers with the smallest d(l, n)")
            for span in 1...maximumSpan {
                let best = angularDistance.indices.compactMap { layer in angularDistance[layer][span - 1].map { (layer, $0) } }
                    .min { $0.1 < $1.1 }
                if let best {
                    lines.append(String(format: "  n = %2d: layers %2d-%2d, d = %.4f", span, best.0, best.0 + span - 1, best.1))
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Which layers attend through a sliding window and which globally, or nil for a model
    /// whose layers all attend globally.
    var attentionSpans: String? {
        guard let flags = slidingWindowLayers, let slidingWindow else { return nil }
        func runs(_ wanted: Bool) -> String {
            var spans: [String] = []
            var layer = 0
            while layer < flags.count {
                guard flags[layer] == wanted else { layer += 1; continue }
                let first = layer
                while layer < flags.count && flags[layer] == wanted { layer += 1 }
                spans.append(first == layer - 1 ? "\(first)" : "\(first)-\(layer - 1)")
            }
            return spans.isEmpty ? "none" : spans.joined(separator: ", ")
        }
        return "sliding window of \(slidingWindow) positions in layers \(runs(true)); global in layers \(runs(false))"
    }

    /// One self-contained HTML page: per-layer bar charts of every metric, the angular
    /// distance heatmap and the removal perplexities on a log scale.
    public func html() -> String {
        let blue = "#3b6fb6", orange = "#e07b39", green = "#3a9a5b", purple = "#7d58b3", red = "#c2423f"
        var ablations = ""
        if !perplexityWithoutLayer.isEmpty || !perplexityWithoutAttention.isEmpty || !perplexityWithoutFFN.isEmpty {
            ablations = SVGChart.logLines(
                title: "Perplexity with one layer or sublayer removed", yLabel: "perplexity (log scale)",
                series: [("without layer", red, perplexityWithoutLayer), ("without attention", blue, perplexityWithoutAttention),
                         ("without FFN", green, perplexityWithoutFFN)],
                reference: perplexityFull.map { (String(format: "full model %.2f", $0), $0) })
        }
        let ablationSection = ablations.isEmpty ? "" : """
            <h2>What removing a layer costs</h2>
            <p class="explain">Each point is the calibration perplexity with one layer (or only its attention or FFN
            sublayer) skipped; the dashed line is the full model. Points near the line are cheap to remove.</p>
            <div class="wide">\(ablations)</div>
            """
        var charts: [String] = []
        charts.append(SVGChart.bars(title: "Block Influence (ShortGPT)", yLabel: "1 − mean cos(h_l, h_l+1)",
                                    values: blockInfluence, color: blue, note: "low = removal candidate"))
        charts.append(SVGChart.bars(title: "LIM (layer input modification)", yLabel: "−mean cos(h_l, h_l+1)",
                                    values: lim, color: purple))
        charts.append(SVGChart.bars(title: "Attention residual contribution", yLabel: "‖attn out‖ / ‖stream‖",
                                    values: attentionContribution, color: blue))
        charts.append(SVGChart.bars(title: "FFN residual contribution", yLabel: "‖FFN out‖ / ‖stream‖",
                                    values: ffnContribution, color: green, note: "layer 0 reads the raw embedding"))
        charts.append(SVGChart.bars(title: "Logit lens: top-1 agreement with the full model", yLabel: "fraction of positions",
                                    values: logitLensAgreement, color: orange))
        charts.append(SVGChart.bars(title: "Logit lens: KL(full ‖ lens)", yLabel: "nats", values: logitLensKL, color: red))
        if let lens = tunedLens {
            charts.append(SVGChart.bars(
                title: "Tuned lens: top-1 agreement (held-out window)", yLabel: "fraction of positions", values: lens.agreement,
                color: orange, note: String(format: "plain lens on the same positions: mean %.2f, tuned %.2f",
                                            lens.plainAgreement.reduce(0, +) / Double(max(layerCount, 1)),
                                            lens.agreement.reduce(0, +) / Double(max(layerCount, 1)))))
            charts.append(SVGChart.logLines(
                title: "Tuned lens vs logit lens: KL(full ‖ lens), held-out window", yLabel: "nats (log scale)",
                series: [("logit lens", red, lens.plainDivergence), ("tuned lens", blue, lens.divergence)], reference: nil,
                xLabel: "layer"))
        }
        charts.append(SVGChart.bars(title: "ZD: weights with |z| > 1", yLabel: "fraction of weights",
                                    values: zd, color: purple, note: "z per matrix, pooled per layer"))
        let heatmap = SVGChart.heatmap(title: "Angular distance d(l, n) at the last token", rowLabel: "first layer l",
                                       columnLabel: "block length n", values: angularDistance)
        let summary = [
            "<b>Calibration</b>: \(windows) windows × \(context) tokens of \(SVGChart.escape(text))",
            attentionSpans.map { "<b>Attention</b>: \($0)" },
            perplexityFull.map { String(format: "<b>Full-model perplexity</b>: %.4f", $0) },
            logitLensPositions > 0 ? "<b>Logit lens</b>: \(logitLensPositions) evenly spaced positions per window" : nil,
            tunedLens.map { "<b>Tuned lens</b>: maps fitted on \($0.fitWindows) windows, measured at \($0.positions) positions of the last" },
            String(format: "<b>Time</b>: %.1f s", seconds),
        ].compactMap { $0 }.joined(separator: " · ")
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>Layer importance — \(SVGChart.escape(model))</title>
            <style>
            body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; }
            h1 { font-size: 22px; margin-bottom: 4px; } p.summary { color: #444; margin-top: 4px; }
            .grid { display: flex; flex-wrap: wrap; gap: 18px; }
            .grid svg, .wide svg { border: 1px solid #ddd; border-radius: 4px; background: #fff; }
            h2 { font-size: 17px; margin: 26px 0 8px; } .explain { color: #555; font-size: 13px; max-width: 1300px; }
            </style></head><body>
            <h1>Layer importance — \(SVGChart.escape(model)) (\(layerCount) layers)</h1>
            <p class="summary">\(summary)</p>
            \(ablationSection)
            <h2>Per-layer scores</h2>
            <p class="explain">h_l is the residual stream entering layer l. Block Influence and LIM come from how much a
            layer turns the stream; contribution ratios from the size of what each sublayer adds; the logit lens applies
            the final norm and LM head to each layer's output.</p>
            <div class="grid">\(charts.joined(separator: "\n"))</div>
            <h2>Angular distance between layer l's input and layer l+n's input</h2>
            <p class="explain">arccos(cos(h_l, h_l+n))/π at each window's last token, averaged. The darkest cell of a
            column is the block of n layers the angular method removes; hatched cells do not exist (l + n &gt; L).</p>
            <div class="wide">\(heatmap)</div>
            </body></html>
            """
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
