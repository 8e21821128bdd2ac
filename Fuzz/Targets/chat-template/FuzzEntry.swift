import StrataFuzzing

// libFuzzer's entry point; libFuzzer itself supplies main (built by scripts/fuzz.sh).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.run(.chatTemplate, data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
