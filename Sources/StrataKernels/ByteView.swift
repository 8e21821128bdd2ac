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
    private let release: @Sendable () -> Void

    private init(base: UnsafeRawPointer, count: Int, release: @escaping @Sendable () -> Void) {
        self.base = base
        self.count = count
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

    /// Maps a whole file read-only. Pages are loaded on first touch and shared with the page
    /// cache, so weights are never copied into the heap.
    public static func mapping(path: String) throws(MappingError) -> ByteStorage {
        let descriptor = open(path, O_RDONLY)
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
        return ByteStorage(base: UnsafeRawPointer(address), count: size) { munmap(mapped, size) }
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

    /// Calls `body` with the view's bytes. Do not let the pointer escape `body`.
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(start: storage.base + offset, count: count))
    }
}
