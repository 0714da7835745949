import Foundation

// EmbedFileTool INPUT OUTPUT TYPE NAME: writes OUTPUT, a Swift source declaring
// `extension TYPE { static let NAME: String }` holding INPUT's text exactly (a raw string
// literal, so nothing in the text is an escape). Run by the EmbedFile build-tool plugin.

let arguments = CommandLine.arguments
guard arguments.count == 5 else {
    FileHandle.standardError.write(Data("usage: EmbedFileTool INPUT OUTPUT TYPE NAME\n".utf8))
    exit(2)
}
let (input, output, type, name) = (arguments[1], arguments[2], arguments[3], arguments[4])
guard let data = FileManager.default.contents(atPath: input), let text = String(data: data, encoding: .utf8) else {
    FileHandle.standardError.write(Data("EmbedFileTool: \(input) is missing or not UTF-8\n".utf8))
    exit(1)
}
guard !text.contains("\r") else {
    FileHandle.standardError.write(Data("EmbedFileTool: \(input) has carriage returns; use LF line endings\n".utf8))
    exit(1)
}

// Enough #s that no `"` or `\` in the text, followed by #s, closes the literal or starts an escape.
var longest = 0
var run = -1
for character in text.unicodeScalars {
    if character == "\"" || character == "\\" {
        run = 0
    } else if character == "#", run >= 0 {
        run += 1
        longest = max(longest, run)
    } else {
        run = -1
    }
}
let hashes = String(repeating: "#", count: longest + 1)
let source = """
    // Generated at build time by the EmbedFile plugin from \(URL(fileURLWithPath: input).lastPathComponent); do not edit.
    extension \(type) {
        static let \(name): String = \(hashes)\"\"\"
    \(text)
    \"\"\"\(hashes)
    }

    """
do {
    // Leave an unchanged file alone, so what depends on it is not rebuilt.
    if FileManager.default.contents(atPath: output) != Data(source.utf8) {
        try Data(source.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
    }
} catch {
    FileHandle.standardError.write(Data("EmbedFileTool: cannot write \(output): \(error)\n".utf8))
    exit(1)
}
