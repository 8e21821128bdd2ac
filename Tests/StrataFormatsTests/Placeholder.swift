import Testing

@Test func strataformatsBuilds() { #expect(Bool(true)) }
