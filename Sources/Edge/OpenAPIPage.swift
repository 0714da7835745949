import Foundation

extension OpenAPIDocument {
    /// `/docs`: the document as a readable page, rendered once from the JSON (no scripts, no
    /// internet at run time).
    static let html: String = {
        guard let document = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let paths = document["paths"] as? [String: [String: Any]]
        else { return "<!doctype html><title>Depot API</title><p>The API document could not be read.</p>" }
        let info = document["info"] as? [String: Any] ?? [:]
        let components = document["components"] as? [String: Any] ?? [:]
        let shared = components["responses"] as? [String: [String: Any]] ?? [:]
        let sharedParameters = components["parameters"] as? [String: [String: Any]] ?? [:]
        /// A parameter, following a `$ref` to the shared parameters.
        func resolved(_ parameter: [String: Any]) -> [String: Any] {
            guard let reference = parameter["$ref"] as? String, let name = reference.split(separator: "/").last else {
                return parameter
            }
            return sharedParameters[String(name)] ?? parameter
        }
        /// A response's description, following a `$ref` to the shared responses.
        func description(_ response: Any) -> String {
            guard let response = response as? [String: Any] else { return "" }
            if let reference = response["$ref"] as? String, let name = reference.split(separator: "/").last {
                return shared[String(name)]?["description"] as? String ?? ""
            }
            return response["description"] as? String ?? ""
        }
        var html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Depot API</title>
            <style>
            body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
            h2{border-top:1px solid #ddd;padding-top:1rem} code{background:#f4f4f4;padding:0 .3em}
            .method{display:inline-block;min-width:4.5em;font-weight:bold} table{border-collapse:collapse}
            td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
            </style></head><body>
            <h1>\(escape(info["title"] as? String ?? "Depot")) API \(escape(info["version"] as? String ?? ""))</h1>
            <p>\(escape(info["description"] as? String ?? ""))</p>
            <p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). Errors are
            <code>application/problem+json</code>. Authenticate with <code>Authorization: Bearer &lt;JWT&gt;</code>.</p>

            """
        for path in paths.keys.sorted() {
            for (method, value) in paths[path]!.sorted(by: { $0.key < $1.key }) {
                guard let operation = value as? [String: Any] else { continue }
                html += "<h2><span class=\"method\">\(method.uppercased())</span> <code>\(escape(path))</code></h2>\n"
                html += "<p>\(escape(operation["summary"] as? String ?? ""))</p>\n"
                if let description = operation["description"] as? String { html += "<p>\(escape(description))</p>\n" }
                if let parameters = operation["parameters"] as? [[String: Any]], !parameters.isEmpty {
                    html += "<table><tr><th>parameter</th><th>in</th><th>required</th><th>notes</th></tr>\n"
                    for parameter in parameters.map(resolved) {
                        html +=
                            "<tr><td><code>\(escape(parameter["name"] as? String ?? ""))</code></td><td>\(escape(parameter["in"] as? String ?? ""))</td>"
                        html +=
                            "<td>\((parameter["required"] as? Bool ?? false) ? "yes" : "no")</td><td>\(escape(parameter["description"] as? String ?? ""))</td></tr>\n"
                    }
                    html += "</table>\n"
                }
                if let body = operation["requestBody"] as? [String: Any],
                    let schema = ((body["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"]
                        as? [String: Any],
                    let reference = schema["$ref"] as? String
                {
                    html +=
                        "<p>Body: <code>\(escape(reference.split(separator: "/").last.map(String.init) ?? ""))</code> (JSON; unknown fields are refused)</p>\n"
                }
                if let responses = operation["responses"] as? [String: Any] {
                    html += "<table><tr><th>status</th><th>meaning</th></tr>\n"
                    for (status, response) in responses.sorted(by: { $0.key < $1.key }) {
                        html += "<tr><td>\(escape(status))</td><td>\(escape(description(response)))</td></tr>\n"
                    }
                    html += "</table>\n"
                }
            }
        }
        return html + "</body></html>\n"
    }()

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
