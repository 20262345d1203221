// gan3d demo page: every action is one public API call; results go into <model-viewer>.
const $ = (id) => document.getElementById(id);
const viewer = $("viewer");
let current = null; // {blob, latent, name}
let frames = []; // interpolation: [{url, blob, latent}]
let loads = 0;

viewer.addEventListener("load", () => {
  loads += 1;
  document.body.dataset.loads = String(loads);
});

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

async function problem(resp) {
  // RFC 9457 problem documents carry a human-readable "detail"
  try {
    const body = await resp.json();
    if (body.title === "Not recognised") {
      // the photo shows none of the model's categories: say so, and offer the picker
      const closest = (body.closest || []).map((c) => `${c.category} ${Math.round(100 * c.probability)}%`);
      $("recon-category").focus();
      return "Not recognised: this photo does not look like anything the model knows" +
        (closest.length ? ` (closest: ${closest.join(", ")})` : "") +
        '. If it shows one of them, pick it under "It shows" and send the photo again.';
    }
    return `${body.title || "Error"} (${resp.status}): ${body.detail || JSON.stringify(body)}`;
  } catch {
    return `The server answered ${resp.status} ${resp.statusText}`;
  }
}

function latentFromHeader(resp) {
  const b64 = resp.headers.get("X-Gan3d-Latent");
  if (!b64) return null;
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return Array.from(new Float32Array(bytes.buffer));
}

let editStart = null; // the latent the Edit sliders move from (the last shape not made by them)
let directions = []; // from GET /v1/directions

function show(blob, latent, name, extra = "", fromEdit = false) {
  current = { blob, latent, name };
  if (!fromEdit) {
    editStart = latent;
    $("edit-amount").value = "0";
    $("edit-amount-value").textContent = "0.0";
    // a sample around a category concept gets that category's sliders; other shapes get all
    fillDirections(name === "sample" ? $("concept").value || null : null);
  }
  if (viewer.dataset.url) URL.revokeObjectURL(viewer.dataset.url);
  const url = URL.createObjectURL(blob);
  viewer.dataset.url = url;
  viewer.src = url;
  $("dl-glb").disabled = false;
  $("dl-voxels").disabled = latent === null;
  const head = latent ? latent.slice(0, 4).map((v) => v.toFixed(2)).join(", ") : "";
  $("info").textContent = `${name}${extra} — latent [${head}, …] (${latent ? latent.length : 0} numbers)`;
}

async function call(path, options, name) {
  clearError();
  try {
    const resp = await fetch(path, options);
    if (!resp.ok) {
      showError(await problem(resp));
      return null;
    }
    return resp;
  } catch (err) {
    showError(`Could not reach the gan3d API (${err.message}).`);
    return null;
  }
}

function json(body) {
  return { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

async function loadConcepts() {
  const resp = await call("v1/concepts", {}, "concepts");
  if (!resp) return;
  const data = await resp.json();
  const fill = (select, names, blank) => {
    select.innerHTML = blank ? '<option value="">(none)</option>' : "";
    for (const n of names) select.add(new Option(n, n));
  };
  fill($("concept"), data.categories, true);
  const all = data.concepts.filter((n) => !data.attribute_directions.includes(n));
  for (const s of document.querySelectorAll("select.concepts")) fill(s, all, false);
  const cats = data.categories;
  $("interp-a").value = cats[0];
  $("interp-b").value = cats[Math.min(2, cats.length - 1)];
  const terms = document.querySelectorAll(".term-concept");
  const pick = (name, fallback) => (all.includes(name) ? name : fallback);
  terms[0].value = pick("chair.has_armrests=1", cats[0]);
  terms[1].value = pick("chair.has_armrests=0", cats[1]);
  terms[2].value = pick("sofa.has_armrests=0", cats[2]);
}

// samples around a concept come from that concept's neighbourhood, whatever the source
$("concept").addEventListener("change", () => {
  $("source").disabled = Boolean($("concept").value);
});

$("temperature").addEventListener("input", () => {
  $("temperature-value").textContent = Number($("temperature").value).toFixed(1);
});

$("sample-btn").addEventListener("click", async () => {
  const body = { temperature: Number($("temperature").value) };
  if ($("seed").value !== "") body.seeds = [Number($("seed").value)];
  if ($("concept").value) body.concept = $("concept").value;
  else if (!$("source-label").hidden) body.source = $("source").value;
  const resp = await call("v1/sample", json(body), "sample");
  if (!resp) return;
  const seed = resp.headers.get("X-Gan3d-Seed");
  show(await resp.blob(), latentFromHeader(resp), "sample", seed ? ` (seed ${seed})` : "");
});

$("interp-btn").addEventListener("click", async () => {
  const steps = Math.max(1, Number($("interp-steps").value) - 1);
  const body = {
    keyframes: [{ concept: $("interp-a").value }, { concept: $("interp-b").value }],
    steps,
    output: { format: "glb" },
  };
  const resp = await call("v1/interpolate", json(body), "interpolate");
  if (!resp) return;
  const data = await resp.json();
  frames = data.shapes.map((s) => ({
    blob: s.empty ? null : new Blob([Uint8Array.from(atob(s.data), (c) => c.charCodeAt(0))], { type: s.media_type }),
    latent: s.latent,
  }));
  const slider = $("interp-slider");
  slider.max = String(frames.length - 1);
  slider.value = "0";
  slider.disabled = false;
  showFrame(0);
});

function showFrame(i) {
  const f = frames[i];
  if (!f.blob) {
    showError(`Frame ${i + 1} is empty at this threshold.`);
    return;
  }
  show(f.blob, f.latent, "interpolation", ` frame ${i + 1}/${frames.length}`);
}

$("interp-slider").addEventListener("input", () => showFrame(Number($("interp-slider").value)));

$("arith-btn").addEventListener("click", async () => {
  const terms = [...document.querySelectorAll(".term")].map((t) => ({
    weight: Number(t.querySelector(".weight").value),
    ref: { concept: t.querySelector("select").value },
  }));
  const resp = await call("v1/arithmetic", json({ terms }), "arithmetic");
  if (!resp) return;
  show(await resp.blob(), latentFromHeader(resp), "arithmetic");
});

// X-Gan3d-Mask: how the service found the object in the photo (docs/api.md, /v1/reconstruct)
const MASK_NOTES = {
  alpha: "cut out by the image's alpha channel",
  background: "found by its plain background",
  segmenter: "cut out of the photo by the segmenter",
  none: "not found: the whole photo was used",
};

const MAX_VIEWS = 8; // photos of one object per request (POST /v1/reconstruct)

async function reconstruct(fileList) {
  const files = Array.from(fileList).slice(0, MAX_VIEWS);
  const form = new FormData();
  for (const file of files) form.append("image", file);
  if ($("recon-category").value) form.append("category", $("recon-category").value);
  const resp = await call("v1/reconstruct", { method: "POST", body: form }, "reconstruct");
  if (!resp) return;
  const seen = resp.headers.get("X-Gan3d-Category");
  const p = Number(resp.headers.get("X-Gan3d-Category-Probability"));
  const note = seen ? ` (the model sees a ${seen}, ${Math.round(100 * p)}%)` : "";
  const masks = (resp.headers.get("X-Gan3d-Mask") || "").split(",");
  const how = files.length === 1 ? MASK_NOTES[masks[0]] : null;
  const cut = how ? `; the object was ${how}` : "";
  const what = files.length === 1 ? files[0].name : `${files.length} photos of one object`;
  show(await resp.blob(), latentFromHeader(resp), `reconstruction of ${what}${note}${cut}`);
}

$("image").addEventListener("change", () => {
  if ($("image").files.length) reconstruct($("image").files);
});
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files.length) reconstruct(e.dataTransfer.files);
});

function download(blob, filename) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

$("dl-glb").addEventListener("click", () => current && download(current.blob, `${current.name}.glb`));
$("dl-voxels").addEventListener("click", async () => {
  if (!current || !current.latent) return;
  const body = { terms: [{ weight: 1, ref: { latent: current.latent } }], output: { format: "npy" } };
  const resp = await call("v1/arithmetic", json(body), "voxels");
  if (resp) download(await resp.blob(), `${current.name}.npy`);
});

async function loadDirections() {
  const resp = await call("v1/directions", {}, "directions");
  if (!resp) return;
  directions = (await resp.json()).directions;
  $("edit-panel").hidden = directions.length === 0;
  fillDirections(null);
}

function fillDirections(category) {
  const select = $("edit-direction");
  const keep = select.value;
  const shown = directions.filter(
    (d) => !category || d.category === category || d.category === "any",
  );
  select.innerHTML = "";
  for (const d of shown.length ? shown : directions) {
    select.add(new Option(`${d.name} (${d.kind})`, d.name));
  }
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  describeDirection();
}

function describeDirection() {
  const d = directions.find((x) => x.name === $("edit-direction").value);
  if (!d) return;
  $("edit-amount").min = String(d.range[0]);
  $("edit-amount").max = String(d.range[1]);
  $("edit-meaning").textContent = d.meaning;
}

let editTimer = null;
async function applyEdit() {
  if (!editStart) {
    showError("Make a shape first (sample, interpolate, arithmetic or a photo), then edit it.");
    return;
  }
  const amount = Number($("edit-amount").value);
  const direction = $("edit-direction").value;
  const body = { start: { latent: editStart }, edits: [{ direction, amount }] };
  const resp = await call("v1/edit", json(body), "edit");
  if (!resp) return;
  show(await resp.blob(), latentFromHeader(resp), "edit", ` (${direction} ${amount.toFixed(1)})`, true);
}

$("edit-direction").addEventListener("change", () => {
  describeDirection();
  applyEdit();
});
$("edit-amount").addEventListener("input", () => {
  $("edit-amount-value").textContent = Number($("edit-amount").value).toFixed(1);
  clearTimeout(editTimer); // debounced: one request once the slider rests for 250 ms
  editTimer = setTimeout(applyEdit, 250);
});

async function loadCategoryHints() {
  // bundles whose image encoder scores prototype codes take a category hint
  const resp = await call("v1/model", {}, "model");
  if (!resp) return;
  const model = await resp.json();
  // bundles whose prior has kernels around real models can sample real-looking shapes
  if ((model.sample_sources || []).includes("real")) $("source-label").hidden = false;
  if (!model.image || !model.image.prototypes) return;
  for (const c of model.categories) $("recon-category").add(new Option(c, c));
  $("recon-category").add(new Option("(blend every category)", "any"));
  $("recon-category-label").hidden = false;
  $("recon-category-hint").hidden = false;
}

loadConcepts();
loadDirections();
loadCategoryHints();
