// Parses Mermaid text with Mermaid's own parser, as a browser would before rendering it.
// Usage: node parse-mermaid.mjs < diagram.mmd
// Prints one JSON object, or exits 1 with the parse error: {"type": ...} and, for a gantt, its "title", "sections"
// and "tasks"; for a stateDiagram, its "states", their "descriptions" and the count of "relations". Texts are shown
// as Mermaid displays them: entity codes such as #58; are decoded.
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const text = Buffer.concat(chunks).toString("utf8");

// Mermaid swaps an entity code (#58; or #quot;) for a placeholder before parsing and back when drawing.
const NAMED = { quot: '"', amp: "&", lt: "<", gt: ">", nbsp: "\u00a0" };
const decoded = (label) =>
  label
    .replace(/\ufb02\u00b0\u00b0(\d+)\u00b6\u00df/g, (_, code) => String.fromCodePoint(Number(code)))
    .replace(/\ufb02\u00b0(\w+)\u00b6\u00df/g, (whole, name) => NAMED[name] ?? whole);

try {
  const parsed = await mermaid.parse(text);
  const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
  const result = { type: parsed.diagramType };
  if (parsed.diagramType === "gantt") {
    // Task dates are only worked out here; an unreadable date throws "Invalid date".
    result.title = decoded(diagram.db.getDiagramTitle());
    result.sections = diagram.db.getSections().map(decoded);
    result.tasks = diagram.db.getTasks().map((task) => ({
      name: decoded(task.task.trim()),
      section: decoded(task.section),
      start: task.startTime.toISOString(),
      end: task.endTime.toISOString(),
      milestone: Boolean(task.milestone),
      processed: Boolean(task.processed),
    }));
  } else if (parsed.diagramType === "stateDiagram") {
    result.states = [...diagram.db.getStates().keys()];
    result.descriptions = Object.fromEntries(
      [...diagram.db.getStates().entries()].map(([id, state]) => [id, state.descriptions.map(decoded)]));
    result.relations = diagram.db.getRelations().length;
  }
  process.stdout.write(JSON.stringify(result));
} catch (error) {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
