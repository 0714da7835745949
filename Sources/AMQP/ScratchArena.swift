/// Bump-allocated scratch memory for building C arguments (field tables, property strings).
///
/// Owned by the connection thread. Pointers stay valid until `reset()`, which the thread calls
/// after each librabbitmq call that serialised them; the first chunk is kept for reuse, so a
/// steady stream of publishes allocates nothing.
final class ScratchArena {
    private var chunks: [(base: UnsafeMutableRawPointer, size: Int)] = []
    private var offset = 0
    private let chunkSize = 16 * 1024

    deinit {
        for chunk in chunks { chunk.base.deallocate() }
    }

    func allocate(byteCount: Int, alignment: Int = 8) -> UnsafeMutableRawPointer {
        let count = max(byteCount, 1)
        if var current = chunks.last {
            let aligned = (offset + alignment - 1) & ~(alignment - 1)
            if aligned + count <= current.size {
                offset = aligned + count
                return current.base + aligned
            }
            current = (
                UnsafeMutableRawPointer.allocate(byteCount: max(count, chunkSize), alignment: 16), max(count, chunkSize)
            )
            chunks.append(current)
        } else {
            chunks.append(
                (
                    UnsafeMutableRawPointer.allocate(byteCount: max(count, chunkSize), alignment: 16),
                    max(count, chunkSize)
                ))
        }
        offset = count
        return chunks[chunks.count - 1].base
    }

    func reset() {
        if chunks.count > 1 {
            for chunk in chunks.dropFirst() { chunk.base.deallocate() }
            chunks.removeLast(chunks.count - 1)
        }
        offset = 0
    }
}
