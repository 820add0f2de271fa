"""The web app's page: plain HTML and a little vanilla JavaScript (no framework, no CDN)."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>taming: VQGAN + transformer</title>
<style>
 body { font-family: sans-serif; margin: 1.5em; max-width: 70em; }
 section { border: 1px solid #ccc; border-radius: 6px; padding: 0.8em 1em; margin-bottom: 1em; }
 label { margin-right: 1em; white-space: nowrap; }
 input[type=number] { width: 5em; }
 img { image-rendering: pixelated; min-width: 128px; border: 1px solid #888; margin: 0.3em; }
 pre { font-size: 10px; max-height: 16em; overflow: auto; background: #f6f6f6; }
 .status { color: #555; margin-left: 1em; }
 .error { color: #b00; }
</style>
</head>
<body>
<h1>taming</h1>
<p>VQGAN reconstruction, transformer sampling and completion
(Esser, Rombach, Ommer: <em>Taming Transformers for High-Resolution Image Synthesis</em>).</p>

<section id="recon">
 <h2>Reconstruct</h2>
 <label>model <select id="recon-model"></select></label>
 <label>image <input type="file" id="recon-file" accept="image/*"></label>
 <label>size <input type="number" id="recon-size" min="8" step="8"></label>
 <button id="recon-go">Reconstruct</button><span class="status" id="recon-status"></span>
 <div><img id="recon-input" alt="input"><img id="recon-img" alt="reconstruction"></div>
 <details><summary>token grid</summary><pre id="recon-tokens"></pre></details>
</section>

<section id="sample">
 <h2>Sample</h2>
 <label>transformer <select id="sample-model"></select></label>
 <span id="sample-kind"></span><br>
 <label>n <input type="number" id="sample-n" value="1" min="1" max="16"></label>
 <label>class <input type="number" id="sample-class" min="0"></label>
 <label>top-k <input type="number" id="sample-topk" value="100" min="0"></label>
 <label>top-p <input type="number" id="sample-topp" step="0.05" min="0" max="1"></label>
 <label>temperature <input type="number" id="sample-temp" value="1.0" step="0.1"></label>
 <label>CFG <input type="number" id="sample-cfg" value="1.0" step="0.5"></label>
 <label>seed <input type="number" id="sample-seed"></label>
 <label id="sample-cond-label">condition map <input type="file" id="sample-cond"></label>
 <button id="sample-go">Sample</button><span class="status" id="sample-status"></span>
 <div><img id="sample-img" alt="samples"></div>
</section>

<section id="complete">
 <h2>Complete the lower part</h2>
 <p>with the transformer chosen under Sample; the top rows of codes are kept.</p>
 <label>image <input type="file" id="complete-file" accept="image/*"></label>
 <label>keep top <input type="number" id="complete-keep" value="0.5" step="0.05" min="0"
   max="1"></label>
 <label>seed <input type="number" id="complete-seed"></label>
 <button id="complete-go">Complete</button><span class="status" id="complete-status"></span>
 <div><img id="complete-img" alt="completion"></div>
</section>

<script>
"use strict";
const $ = (id) => document.getElementById(id);
let info = {first_stages: [], transformers: []};

function fill(select, entries) {
  select.innerHTML = "";
  for (const e of entries) {
    const o = document.createElement("option");
    o.value = e.name; o.textContent = e.name + " (" + e.path + ")";
    select.appendChild(o);
  }
}

function describe() {
  const t = info.transformers.find((e) => e.name === $("sample-model").value);
  if (!t) { $("sample-kind").textContent = "no transformer served (--transformer RUN)"; return; }
  let text = t.kind + ", " + t.size[0] + "x" + t.size[1] + " px";
  if (t.kind === "class") text += ", classes 0.." + (t.n_classes - 1);
  $("sample-kind").textContent = text;
  $("sample-class").disabled = t.kind !== "class";
  $("sample-cond-label").style.display =
    (t.kind === "unconditional" || t.kind === "class") ? "none" : "";
}

async function load() {
  info = await (await fetch("/api/models")).json();
  fill($("recon-model"), info.first_stages);
  fill($("sample-model"), info.transformers);
  if (info.first_stages.length) $("recon-size").value = info.first_stages[0].size[0];
  $("sample-model").onchange = describe;
  describe();
}

function put(form, name, id) {
  const v = $(id).value;
  if (v !== "") form.append(name, v);
}

async function post(url, form, img, status) {
  const job = Math.random().toString(36).slice(2, 12);
  form.append("job", job);
  status.className = "status"; status.textContent = "working...";
  const t0 = performance.now();
  const timer = setInterval(async () => {
    try {
      const jobs = (await (await fetch("/api/jobs")).json()).jobs;
      const j = jobs.find((x) => x.id === job);
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      status.textContent = j ? j.state + " " + j.done + "/" + j.total + ", " + secs + " s"
                             : "working... " + secs + " s";
    } catch (e) { /* the answer is on its way */ }
  }, 500);
  try {
    const r = await fetch(url, {method: "POST", body: form});
    if (!r.ok) throw new Error(r.status + ": " + (await r.text()));
    const blob = await r.blob();
    img.src = URL.createObjectURL(blob);
    status.textContent = "done in " + ((performance.now() - t0) / 1000).toFixed(1) + " s";
    return true;
  } catch (e) {
    status.className = "status error"; status.textContent = e.message;
    return false;
  } finally { clearInterval(timer); }
}

$("recon-go").onclick = async () => {
  const file = $("recon-file").files[0];
  if (!file) { $("recon-status").textContent = "choose an image first"; return; }
  $("recon-input").src = URL.createObjectURL(file);
  const form = () => {
    const f = new FormData();
    f.append("image", file); f.append("model", $("recon-model").value);
    put(f, "size", "recon-size");
    return f;
  };
  if (await post("/api/reconstruct", form(), $("recon-img"), $("recon-status"))) {
    const r = await fetch("/api/tokens", {method: "POST", body: form()});
    if (r.ok) {
      const g = await r.json();
      $("recon-tokens").textContent = g.h + "x" + g.w + " codes\\n" +
        g.tokens.map((row) => row.map((t) => String(t).padStart(5)).join("")).join("\\n");
    }
  }
};

$("sample-go").onclick = async () => {
  const f = new FormData();
  f.append("model", $("sample-model").value);
  put(f, "n", "sample-n"); put(f, "top_k", "sample-topk"); put(f, "top_p", "sample-topp");
  put(f, "temperature", "sample-temp"); put(f, "cfg_scale", "sample-cfg");
  put(f, "seed", "sample-seed");
  if (!$("sample-class").disabled) put(f, "class_label", "sample-class");
  const cond = $("sample-cond").files[0];
  if (cond && $("sample-cond-label").style.display !== "none") f.append("condition", cond);
  await post("/api/sample", f, $("sample-img"), $("sample-status"));
};

$("complete-go").onclick = async () => {
  const file = $("complete-file").files[0];
  if (!file) { $("complete-status").textContent = "choose an image first"; return; }
  const f = new FormData();
  f.append("image", file); f.append("model", $("sample-model").value);
  put(f, "keep_top", "complete-keep"); put(f, "seed", "complete-seed");
  put(f, "top_k", "sample-topk"); put(f, "temperature", "sample-temp");
  await post("/api/complete", f, $("complete-img"), $("complete-status"));
};

load();
</script>
</body>
</html>
"""
