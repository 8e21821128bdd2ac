import Testing

@Test func stratatokenizerBuilds() { #expect(Bool(true)) }
