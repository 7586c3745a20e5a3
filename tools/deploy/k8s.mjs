// SPDX-License-Identifier: MIT
// k8s.mjs -- validate rendered Kubernetes manifests offline, as the API server would
//
//   node k8s.mjs validate FILE.yaml...   every document against its kind's schema; exit 1 on
//                                        any error, each printed as "file: Kind/name: path: why"
//   node k8s.mjs json FILE.yaml          the documents as one JSON array (for C tests)
//
// Schemas come from npm packages pinned in package.json: kubernetes-models (the Kubernetes
// OpenAPI, compiled to ajv validators: types, required fields, enums, formats) and the CRD
// models of KEDA (ScaledObject...) and the Prometheus Operator (PodMonitor, PrometheusRule...).
// A kind no package knows is an error, never a silent pass.
//
// The compiled schemas accept unknown fields (the OpenAPI does not forbid them; the API
// server's strict field validation does). A misspelt `allowPrivilegeEscalaton: false` would
// pass and silently drop the hardening, so for the built-in kinds every field is also
// checked against the model's declared properties, read from its TypeScript declaration
// (the same generator output as the validators). CRD objects get the schema check only:
// their declarations nest anonymous types this reader does not follow.
import { readFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import YAML from "yaml";

const require = createRequire(import.meta.url);

function modelPath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "keda.sh") return `@kubernetes-models/keda/keda.sh/${version}/${kind}`;
  if (group === "monitoring.coreos.com")
    return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}/${kind}`;
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

// ---- declared properties, from the model's .d.ts --------------------------------------
const ifaces = new Map(); // .d.ts path -> {props: Map(name -> type), imports: Map(type -> path)}

function resolveDts(fromFile, spec) {
  if (spec.startsWith(".")) return join(dirname(fromFile), spec) + ".d.ts";
  return require.resolve(spec).replace(/\.js$/, ".d.ts");
}

function parseDts(file) {
  if (ifaces.has(file)) return ifaces.get(file);
  const text = readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";/gm)) imports.set(m[1], resolveDts(file, m[2]));
  const start = text.search(/^export interface \w+( extends [\w, ]+)? \{/m);
  let props = null;
  if (start >= 0) {
    props = new Map();
    const body = text.slice(start, text.indexOf("\n}", start));
    const lines = body.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const m = lines[i].match(/^ {4}"([^"]+)"\??: (.*)$/);
      if (!m) continue;
      let type = m[2].replace(/;$/, "");
      if (type === "{") {
        // a map: { [key: string]: T; }
        const v = lines[i + 1]?.match(/\[key: string\]: (.*);$/);
        type = v ? `Map<${v[1]}>` : "object";
      }
      props.set(m[1], type);
    }
  }
  const r = { props, imports };
  ifaces.set(file, r);
  return r;
}

function strict(value, dtsFile, path, errors) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return;
  const { props, imports } = parseDts(dtsFile);
  if (!props) return; // a type alias (IntOrString, Quantity...): a scalar
  for (const [k, v] of Object.entries(value)) {
    const type = props.get(k);
    if (type === undefined) {
      errors.push(`${path}/${k}: unknown field (not in ${dtsFile.split("node_modules/")[1]})`);
      continue;
    }
    walkType(v, type, imports, `${path}/${k}`, errors);
  }
}

function walkType(v, type, imports, path, errors) {
  let m;
  if ((m = type.match(/^Array<(\w+)>$/))) {
    if (Array.isArray(v) && imports.has(m[1])) v.forEach((e, i) => strict(e, imports.get(m[1]), `${path}/${i}`, errors));
  } else if ((m = type.match(/^Map<(\w+)>$/))) {
    if (v && typeof v === "object" && imports.has(m[1]))
      for (const [k, e] of Object.entries(v)) strict(e, imports.get(m[1]), `${path}/${k}`, errors);
  } else if (imports.has(type)) {
    strict(v, imports.get(type), path, errors);
  }
}

// ---- documents -------------------------------------------------------------------------
function load(file) {
  return YAML.parseAllDocuments(readFileSync(file, "utf8"))
    .map((d) => {
      if (d.errors.length) throw new Error(`${file}: YAML: ${d.errors[0].message}`);
      return d.toJS();
    })
    .filter((d) => d !== null);
}

function validateDoc(doc) {
  const errors = [];
  if (!doc.apiVersion || !doc.kind) return ["no apiVersion/kind"];
  const path = modelPath(doc.apiVersion, doc.kind);
  let Model;
  try {
    Model = require(path)[doc.kind];
  } catch {
    return [`no schema for ${doc.apiVersion} ${doc.kind} (${path})`];
  }
  try {
    new Model(doc).validate();
  } catch (e) {
    errors.push(e.message);
  }
  if (path.startsWith("kubernetes-models/")) {
    const dts = require.resolve(path).replace(/\.js$/, ".d.ts");
    if (existsSync(dts)) strict(doc, dts, "", errors);
  }
  return errors;
}

const [cmd, ...files] = process.argv.slice(2);
if (cmd === "json" && files.length === 1) {
  process.stdout.write(JSON.stringify(load(files[0])) + "\n");
} else if (cmd === "validate" && files.length) {
  let bad = 0, n = 0;
  for (const f of files) {
    for (const doc of load(f)) {
      n++;
      for (const e of validateDoc(doc)) {
        console.log(`${f}: ${doc.kind}/${doc.metadata?.name}: ${e}`);
        bad++;
      }
    }
  }
  console.log(`${n} documents, ${bad} errors`);
  process.exit(bad ? 1 : 0);
} else {
  console.error("usage: node k8s.mjs validate FILE.yaml... | node k8s.mjs json FILE.yaml");
  process.exit(2);
}
