/// Tracks publishes awaiting publisher confirms on one channel.
///
/// A pure state machine: the connection thread feeds it publishes, basic.ack, basic.nack and
/// basic.return, and it answers which publishes are now settled and how. Delivery tags count
/// from 1 after confirm.select; `multiple` settles every outstanding tag up to the given one.
///
/// basic.return carries no delivery tag. RabbitMQ sends it before the basic.ack of the same
/// message, so a return is matched to the oldest outstanding mandatory publish with the same
/// exchange, routing key and message id that has not been returned yet.
struct ConfirmTracker<Token> {
    enum Outcome {
        case confirmed
        case nacked
        case returned(replyCode: UInt16, replyText: String)
    }

    private struct Entry {
        var tag: UInt64
        var token: Token
        var route: Route?
        var returned: (replyCode: UInt16, replyText: String)?
        var settled = false
    }

    struct Route: Equatable {
        var exchange: String
        var routingKey: String
        var messageId: String?
    }

    // Entries in tag order; `head` skips settled entries at the front without shifting.
    private var entries: [Entry] = []
    private var head = 0
    private(set) var nextTag: UInt64 = 1

    var outstandingCount: Int { entries[head...].lazy.filter { !$0.settled }.count }

    /// Records a publish and returns its delivery tag. `route` is given for mandatory publishes.
    mutating func published(_ token: Token, mandatoryRoute route: Route? = nil) -> UInt64 {
        let tag = nextTag
        nextTag += 1
        entries.append(Entry(tag: tag, token: token, route: route))
        return tag
    }

    mutating func returned(_ route: Route, replyCode: UInt16, replyText: String) {
        for index in head..<entries.count where !entries[index].settled && entries[index].returned == nil {
            if entries[index].route == route {
                entries[index].returned = (replyCode, replyText)
                return
            }
        }
    }

    mutating func acked(tag: UInt64, multiple: Bool) -> [(Token, Outcome)] {
        settle(tag: tag, multiple: multiple) { entry in
            if let returned = entry.returned {
                return .returned(replyCode: returned.replyCode, replyText: returned.replyText)
            }
            return .confirmed
        }
    }

    mutating func nacked(tag: UInt64, multiple: Bool) -> [(Token, Outcome)] {
        settle(tag: tag, multiple: multiple) { _ in .nacked }
    }

    /// Forgets every outstanding publish (the channel closed) and returns them in tag order;
    /// tags count from 1 again on the next channel.
    mutating func reset() -> [Token] {
        let open = entries[head...].filter { !$0.settled }.map(\.token)
        entries.removeAll(keepingCapacity: true)
        head = 0
        nextTag = 1
        return open
    }

    private mutating func settle(tag: UInt64, multiple: Bool, outcome: (Entry) -> Outcome) -> [(Token, Outcome)] {
        var settled: [(Token, Outcome)] = []
        if multiple {
            var index = head
            while index < entries.count, entries[index].tag <= tag {
                if !entries[index].settled {
                    entries[index].settled = true
                    settled.append((entries[index].token, outcome(entries[index])))
                }
                index += 1
            }
        } else if let index = indexOf(tag: tag), !entries[index].settled {
            entries[index].settled = true
            settled.append((entries[index].token, outcome(entries[index])))
        }
        compact()
        return settled
    }

    private func indexOf(tag: UInt64) -> Int? {
        // Tags are dense and ascending, so the position follows from the first tag.
        guard head < entries.count else { return nil }
        let offset = Int(truncatingIfNeeded: tag &- entries[head].tag)
        let index = head + offset
        guard tag >= entries[head].tag, index < entries.count, entries[index].tag == tag else { return nil }
        return index
    }

    private mutating func compact() {
        while head < entries.count, entries[head].settled { head += 1 }
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }
}
