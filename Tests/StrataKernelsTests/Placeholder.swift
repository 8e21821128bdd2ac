import Testing

@Test func stratakernelsBuilds() { #expect(Bool(true)) }
