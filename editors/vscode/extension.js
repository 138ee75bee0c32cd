// Starts `flowc lsp` for .flow files. Everything the editor shows (diagnostics, hover,
// definitions, completion, formatting) comes from the server; this file only connects them.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("flowc").get("path") || "flowc";
  const serverOptions = { command, args: ["lsp"] };
  const clientOptions = {
    documentSelector: [{ scheme: "file", language: "flow" }],
    synchronize: {
      // A changed flow.toml, SQL file or Python block can change a spec's diagnostics.
      fileEvents: vscode.workspace.createFileSystemWatcher("**/{flow.toml,.env,*.sql,*.py}"),
    },
  };
  client = new LanguageClient("flowc", "flowc", serverOptions, clientOptions);
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
