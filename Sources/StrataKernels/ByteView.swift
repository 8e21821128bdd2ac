#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Read-only bytes that stay valid as long as some `ByteView` refers to them: a memory-mapped
/// file or a heap copy. The only owner of raw memory outside the kernels' scratch buffers.
public final class ByteStorage: @unchecked Sendable {
    let base: UnsafeRawPointer
    public let count: Int
    /// Whether the bytes are a file mapping (whose pages can be dropped and read again).
    let isMapped: Bool
    private let release: @Sendable () -> Void

    private init(base: UnsafeRawPointer, count: Int, isMapped: Bool = false, release: @escaping @Sendable () -> Void) {
        self.base = base
        self.count = count
        self.isMapped = isMapped
        self.release = release
    }

    deinit { release() }

    /// Copies `bytes` to the heap.
    public static func copying(_ bytes: [UInt8]) -> ByteStorage {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { source in
            if let address = source.baseAddress { memory.copyMemory(from: address, byteCount: source.count) }
        }
        nonisolated(unsafe) let owned = memory
        return ByteStorage(base: UnsafeRawPointer(memory), count: bytes.count) { owned.deallocate() }
    }

    /// `count` bytes on the heap, written once by `fill` (the kernels' repacked weights).
    /// Large ones are asked for in huge pages: first touches of fresh pages (faults, zeroing)
    /// were most of the time repacking a model took.
    static func filled(count: Int, _ fill: (UnsafeMutableRawPointer) -> Void) -> ByteStorage {
        let hugePage = 2 << 20
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: count >= hugePage ? hugePage : 64)
        #if os(Linux)
        if count >= hugePage { _ = madvise(memory, count / hugePage * hugePage, Int32(MADV_HUGEPAGE)) }
        #endif
        fill(memory)
        nonisolated(unsafe) let owned = memory
        return ByteStorage(base: UnsafeRawPointer(memory), count: count) { owned.deallocate() }
    }

    /// Maps a whole file read-only. Pages are loaded on first touch and shared with the page
    /// cache, so weights are never copied into the heap.
    public static func mapping(path: String) throws(MappingError) -> ByteStorage {
        // Non-blocking, so that a FIFO opens at once (a blocking open waits for a writer) and is
        // refused by the file-type check below; it changes nothing for a regular file.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK)
        guard descriptor >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw .cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(status.st_size)
        if size == 0 { return copying([]) }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        nonisolated(unsafe) let mapped = address
        return ByteStorage(base: UnsafeRawPointer(address), count: size, isMapped: true) { munmap(mapped, size) }
    }
}

/// Why a file could not be mapped.
public enum MappingError: Error, CustomStringConvertible, Sendable {
    case cannotOpen(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): "cannot open \(path): \(reason)"
        }
    }
}

/// A bounds-checked window into a `ByteStorage`. Readers above the kernels parse files through
/// its typed loads; kernels reach the raw pointer through closure-scoped access.
public struct ByteView: Sendable {
    public let storage: ByteStorage
    /// Offset of the first byte within `storage`.
    public let offset: Int
    /// Number of bytes in the view.
    public let count: Int

    /// A view of the whole storage.
    public init(_ storage: ByteStorage) {
        self.storage = storage
        self.offset = 0
        self.count = storage.count
    }

    init(storage: ByteStorage, offset: Int, count: Int) {
        self.storage = storage
        self.offset = offset
        self.count = count
    }

    /// Whether `[start, start + length)` lies inside the view (overflow-safe).
    public func contains(start: Int, length: Int) -> Bool {
        guard start >= 0, length >= 0 else { return false }
        let (end, overflow) = start.addingReportingOverflow(length)
        return !overflow && end <= count
    }

    /// A sub-view; traps when out of range, so callers check `contains` first.
    public func slice(start: Int, length: Int) -> ByteView {
        precondition(contains(start: start, length: length), "ByteView slice \(start)+\(length) outside \(count) bytes")
        return ByteView(storage: storage, offset: offset + start, count: length)
    }

    /// Loads a little-endian integer at `position`; traps when out of range.
    public func load<T: FixedWidthInteger>(_ type: T.Type, at position: Int) -> T {
        precondition(contains(start: position, length: MemoryLayout<T>.size), "ByteView load outside range")
        return T(littleEndian: storage.base.loadUnaligned(fromByteOffset: offset + position, as: T.self))
    }

    /// Loads a little-endian IEEE float at `position`.
    public func loadFloat(at position: Int) -> Float { Float(bitPattern: load(UInt32.self, at: position)) }

    /// Loads a little-endian IEEE double at `position`.
    public func loadDouble(at position: Int) -> Double { Double(bitPattern: load(UInt64.self, at: position)) }

    /// The bytes `[position, position + length)` as an array.
    public func bytes(at position: Int, count length: Int) -> [UInt8] {
        precondition(contains(start: position, length: length), "ByteView read outside range")
        return Array(UnsafeRawBufferPointer(start: storage.base + offset + position, count: length))
    }

    /// Decodes `[position, position + length)` as UTF-8, or nil if the bytes are not valid UTF-8.
    public func string(at position: Int, count length: Int) -> String? {
        precondition(contains(start: position, length: length), "ByteView read outside range")
        let buffer = UnsafeRawBufferPointer(start: storage.base + offset + position, count: length)
        return String(validating: buffer, as: UTF8.self)
    }

    /// Drops the view's whole pages from the process's resident memory when it is a file
    /// mapping; they are read from the file again if touched later. Does nothing for heap bytes.
    /// For data that now lives elsewhere (repacked weights), so it is not resident twice.
    public func releaseResidentPages() {
        guard storage.isMapped else { return }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: storage.base) + offset
        let firstPage = (start + pageSize - 1) / pageSize * pageSize
        let endPage = (start + count) / pageSize * pageSize
        guard endPage > firstPage, let address = UnsafeMutableRawPointer(bitPattern: firstPage) else { return }
        _ = madvise(address, endPage - firstPage, Int32(MADV_DONTNEED))
    }

    /// Calls `body` with the view's bytes. Do not let the pointer escape `body`.
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(start: storage.base + offset, count: count))
    }
}
