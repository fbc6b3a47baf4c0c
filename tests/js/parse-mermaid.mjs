// Parses Mermaid text with Mermaid's own parser, as a browser would before rendering it.
// Usage: node parse-mermaid.mjs < diagram.mmd
// Prints one JSON object: {"type": ..., "tasks": [...]} (tasks only for gantt), or exits 1 with the parse error.
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const text = Buffer.concat(chunks).toString("utf8");

try {
  const parsed = await mermaid.parse(text);
  const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
  const result = { type: parsed.diagramType };
  if (parsed.diagramType === "gantt") {
    // Task dates are only worked out here; an unreadable date throws "Invalid date".
    result.tasks = diagram.db.getTasks().map((task) => ({
      name: task.task.trim(),
      section: task.section,
      start: task.startTime.toISOString(),
      end: task.endTime.toISOString(),
      milestone: Boolean(task.milestone),
      processed: Boolean(task.processed),
    }));
  } else if (parsed.diagramType === "stateDiagram") {
    result.states = [...diagram.db.getStates().keys()];
    result.relations = diagram.db.getRelations().length;
  }
  process.stdout.write(JSON.stringify(result));
} catch (error) {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
