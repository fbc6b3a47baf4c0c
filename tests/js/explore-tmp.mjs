import { JSDOM } from "jsdom";
const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window; globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
const chunks = []; for await (const c of process.stdin) chunks.push(c);
const text = Buffer.concat(chunks).toString("utf8");
try {
  await mermaid.parse(text); const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
  if (diagram.type === "gantt") console.log(JSON.stringify({title: diagram.db.getDiagramTitle(), sections: diagram.db.getSections?.(), tasks: diagram.db.getTasks().map(t => [t.section, t.task, t.id])}));
  else console.log(JSON.stringify([...diagram.db.getStates().entries()].map(([k, v]) => [k, v.descriptions]), null, 0), diagram.db.getRelations().map(r=>[r.id1,r.id2,r.relationTitle]));
} catch (e) { console.log("ERR", e.message); }
