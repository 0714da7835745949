import Foundation
import PackagePlugin

/// Embeds a target's `openapi.json` in its code at build time: the file becomes a Swift source
/// declaring `OpenAPIDocument.json`, so the one `depot` binary carries the document (the Docker
/// image copies only the binary; no bundle is read at run time). The target excludes the file
/// from its sources and applies this plugin.
@main
struct EmbedFile: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let input = target.directoryURL.appending(path: "openapi.json")
        let output = context.pluginWorkDirectoryURL.appending(path: "OpenAPIDocument+json.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(input.lastPathComponent) in \(target.name)",
                executable: try context.tool(named: "EmbedFileTool").url,
                arguments: [input.path, output.path, "OpenAPIDocument", "json"],
                inputFiles: [input], outputFiles: [output])
        ]
    }
}
