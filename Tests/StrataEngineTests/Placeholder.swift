import Testing

@Test func strataengineBuilds() { #expect(Bool(true)) }
