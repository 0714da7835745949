import DepotModel
import Foundation
import Postgres
import Projector
import Testing

@testable import Edge

@Suite("Keyset cursors")
struct CursorTests {
    @Test("a product cursor and an order cursor give back their position")
    func roundTrip() throws {
        for sku in ["a", "mug", "A.b-c_9", String(repeating: "z", count: 64)] {
            #expect(try Cursor.productKey(Substring(Cursor.product(after: sku))) == sku)
        }
        let at = Date(timeIntervalSince1970: 1_800_000_000.123456)
        let order = OrderRow(
            id: UUID(), customerId: "alice", status: .pending, lines: [], totalCents: nil, paymentStatus: .none,
            paymentReference: nil,
            reason: nil, createdAt: at, updatedAt: at, version: 1, position: 1)
        let cursor = Cursor.order(after: order)
        #expect(cursor.count == 32)
        let key = try #require(try Cursor.orderKey(Substring(cursor)))
        #expect(key.id == order.id)
        #expect(key.createdAt.postgresTimestampText == order.createdAt.postgresTimestampText)
        #expect(try Cursor.productKey(nil) == "" && Cursor.productKey("") == "")
        #expect(try Cursor.orderKey(nil) == nil && Cursor.orderKey("") == nil)
    }

    @Test("base64url encodes as Foundation does, without padding")
    func base64url() {
        for length in 0..<20 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 250) }
            let expected = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            #expect(Cursor.encode(bytes) == expected)
            #expect(Cursor.decode(Substring(expected)) == bytes)
        }
    }

    @Test(
        "the document's patterns are the cursors' shapes, and the edge takes every string of that shape and nothing else"
    )
    func patternsAreExact() throws {
        let document = try #require(
            try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.bytes)) as? [String: Any])
        let parameters = try #require(
            (document["components"] as? [String: Any])?["parameters"] as? [String: [String: Any]])
        let products = try #require(parameters["ProductsAfter"]?["schema"] as? [String: Any])
        let orders = try #require(parameters["OrdersAfter"]?["schema"] as? [String: Any])
        #expect(
            products["pattern"] as? String == Cursor.productPattern
                && products["maxLength"] as? Int == Cursor.productMaxLength)
        #expect(orders["pattern"] as? String == Cursor.orderPattern && orders["maxLength"] == nil)

        let productRegex = try NSRegularExpression(pattern: Cursor.productPattern)
        let orderRegex = try NSRegularExpression(pattern: Cursor.orderPattern)
        func matches(_ regex: NSRegularExpression, _ text: String) -> Bool {
            regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        }
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let others = Array("+/=!. %é\u{0}")
        for round in 0..<2_000 {
            let length = round < 100 ? round % 40 : Int.random(in: 0...40, using: &generator)
            var text = String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
            if round % 5 == 4, !text.isEmpty {
                text.insert(
                    others.randomElement(using: &generator)!,
                    at: text.index(text.startIndex, offsetBy: Int.random(in: 0..<text.count)))
            }
            let product = (try? Cursor.productKey(Substring(text))) != nil
            #expect(product == matches(productRegex, text), "products after=\(text.debugDescription)")
            let order: Bool
            do {
                _ = try Cursor.orderKey(Substring(text))  // nil for an empty one: the first page
                order = true
            } catch { order = false }
            #expect(order == matches(orderRegex, text), "orders after=\(text.debugDescription)")
        }
    }
}
