// mfrec's page: plain JavaScript against the JSON API under /api/v1 (no build step, no libraries).
"use strict";

const API = "/api/v1";
const state = { info: null, ratings: new Map(), timer: null, seq: 0 };
const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  };
  const r = await fetch(API + path, opts);
  const data = await r.json().catch(() => ({ error: `the server answered ${r.status} without JSON` }));
  if (!r.ok) throw Object.assign(new Error(data.error || `error ${r.status}`), { data });
  return data;
}

// -- stars -----------------------------------------------------------------------------------------
function starValues() {
  const [lo, hi] = state.info ? state.info.rating_scale : [1, 5];
  const out = [];
  for (let v = Math.max(1, Math.ceil(lo)); v <= hi; v++) out.push(v);
  return out;
}

function stars(movie, current) {
  const box = el("span", "stars");
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", `Rate ${movie.title}`);
  for (const v of starValues()) {
    const b = el("button", "star" + (current && v <= current ? " on" : ""), "★");
    b.type = "button";
    b.dataset.value = v;
    b.title = `${v} of ${starValues().length}`;
    b.setAttribute("aria-label", `${v} star${v === 1 ? "" : "s"} for ${movie.title}`);
    b.addEventListener("click", () => rate(movie, v));
    box.append(b);
  }
  return box;
}

function rate(movie, value) {
  state.ratings.set(movie.movieId, { movieId: movie.movieId, title: movie.title, year: movie.year, rating: value });
  save();
  renderRated();
  renderResults(state.lastResults || []);
  schedule();
}

function unrate(id) {
  state.ratings.delete(id);
  save();
  renderRated();
  renderResults(state.lastResults || []);
  schedule();
}

function save() {
  if (!state.info) return;
  try {
    localStorage.setItem("mfrec:" + state.info.run, JSON.stringify([...state.ratings.values()]));
  } catch (e) { /* private mode: ratings live only in this page */ }
}

function restore() {
  try {
    const saved = JSON.parse(localStorage.getItem("mfrec:" + state.info.run) || "[]");
    for (const r of saved) state.ratings.set(r.movieId, r);
  } catch (e) { /* nothing saved */ }
}

// -- movies and lists ----------------------------------------------------------------------------------
function meta(m) {
  const line = el("span", "meta");
  if (m.year) line.append(el("span", "year", m.year));
  for (const g of m.genres || []) line.append(el("span", "chip", g));
  return line;
}

function renderResults(movies) {
  state.lastResults = movies;
  const ul = $("results");
  ul.replaceChildren();
  for (const m of movies) {
    const li = el("li", "result");
    const text = el("div", "movie-text");
    text.append(el("span", "title", m.title), meta(m));
    const r = state.ratings.get(m.movieId);
    li.append(text, stars(m, r && r.rating));
    ul.append(li);
  }
}

function renderRated() {
  const ul = $("rated");
  ul.replaceChildren();
  const n = state.ratings.size;
  $("rated-count").textContent = n ? `(${n})` : "";
  $("no-ratings").hidden = n > 0;
  for (const r of [...state.ratings.values()].reverse()) {
    const li = el("li", "rated-item");
    const text = el("div", "movie-text");
    text.append(el("span", "title", r.title));
    const remove = el("button", "icon remove", "✕");
    remove.type = "button";
    remove.setAttribute("aria-label", `Remove ${r.title}`);
    remove.addEventListener("click", () => unrate(r.movieId));
    li.append(text, stars(r, r.rating), remove);
    ul.append(li);
  }
}

function card(item, withSimilar) {
  const li = el("li", "card");
  li.dataset.movieId = item.movieId;
  const head = el("div", "card-head");
  head.append(el("span", "rank", item.rank));
  const titles = el("div", "movie-text");
  titles.append(el("span", "title", item.title), meta(item));
  head.append(titles);
  if (item.predicted_rating !== null && item.predicted_rating !== undefined) {
    // bayes runs: the posterior sd of the prediction, "4.3 ± 0.4"
    const sd = item.sd !== null && item.sd !== undefined ? ` ± ${item.sd.toFixed(1)}` : "";
    const p = el("span", "predicted", `★ ${item.predicted_rating.toFixed(1)}${sd}`);
    p.title = sd ? "predicted rating ± its posterior standard deviation" : "predicted rating";
    head.append(p);
  } else if (item.score !== undefined) {
    head.append(el("span", "predicted muted", item.score.toFixed(2)));
  }
  li.append(head);
  const foot = el("div", "card-foot");
  foot.append(el("p", "why", item.why || ""));
  if (withSimilar) {
    const actions = el("div", "actions");
    if (state.info.supports.includes("similar")) {
      const b = el("button", "link similar-btn", "Similar films");
      b.type = "button";
      b.addEventListener("click", () => openSimilar(item));
      actions.append(b);
    }
    const rated = state.ratings.get(item.movieId);
    actions.append(stars(item, rated && rated.rating));
    foot.append(actions);
  }
  li.append(foot);
  return li;
}

function filters() {
  const genre = $("genre").value;
  const lo = $("year-from").value.trim(), hi = $("year-to").value.trim();
  const years = lo || hi ? `${lo}-${hi}` : null;
  const min = parseInt($("min-ratings").value, 10);
  return { genres: genre ? [genre] : [], years, min_ratings: Number.isFinite(min) && min >= 0 ? min : 0 };
}

function query(f) {
  const q = new URLSearchParams();
  for (const g of f.genres) q.append("genre", g);
  if (f.years) q.set("years", f.years);
  q.set("min_ratings", f.min_ratings);
  return q;
}

function showError(message) {
  const p = $("error");
  p.textContent = message || "";
  p.hidden = !message;
}

async function refresh() {
  const seq = ++state.seq;
  const f = filters();
  try {
    let data;
    if (state.ratings.size) {
      const ratings = [...state.ratings.values()].map((r) => ({ movie: r.movieId, rating: r.rating }));
      data = await api("/recommendations", { ratings, top: 10, ...f });
      $("recs-h").textContent = "Your top 10";
    } else {
      const q = query(f);
      q.set("top", 10);
      data = await api("/movies/popular?" + q);
      $("recs-h").textContent = "Popular films to rate";
    }
    if (seq !== state.seq) return; // a newer request is on its way
    showError("");
    const notes = data.notes.filter((n) => n.startsWith("filter"));
    // another run ranked the list (rank_by): say which; the stars stay the served run's predictions
    if (data.ranker) notes.unshift(`ranked by ${data.ranker.kind} run ${data.ranker.run}; ★ is ${data.run}'s predicted rating`);
    $("recs-note").textContent = notes.join("; ");
    $("recs").replaceChildren(...data.items.map((it) => card(it, true)));
    if (!data.items.length) $("recs").append(el("li", "empty", "No film passes these filters."));
  } catch (e) {
    if (seq === state.seq) showError(e.message);
  }
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(refresh, 150);
}

async function openSimilar(item) {
  const q = query(filters());
  q.set("movie", item.movieId);
  q.set("top", 10);
  const dlg = $("similar");
  $("similar-h").textContent = `Similar to ${item.title}`;
  $("similar-list").replaceChildren(el("li", "empty", "loading…"));
  if (!dlg.open) dlg.showModal();
  try {
    const data = await api("/movies/similar?" + q);
    $("similar-note").textContent = data.notes[0] || "";
    $("similar-list").replaceChildren(...data.items.map((it) => card(it, false)));
    if (!data.items.length) $("similar-list").replaceChildren(el("li", "empty", "No film passes these filters."));
  } catch (e) {
    $("similar-list").replaceChildren(el("li", "error", e.message));
  }
}

// -- search ----------------------------------------------------------------------------------------
let searchTimer = null;
async function search() {
  const q = $("search").value.trim();
  if (!q) return renderResults([]);
  try {
    const data = await api("/movies/search?" + new URLSearchParams({ q, limit: 8 }));
    if ($("search").value.trim() === q) renderResults(data.movies);
  } catch (e) {
    renderResults([]);
    showError(e.message);
  }
}

async function start() {
  try {
    state.info = await api("/model");
  } catch (e) {
    $("run-info").textContent = "the model could not be loaded: " + e.message;
    return;
  }
  const i = state.info;
  const rmse = i.metrics.test_rmse !== undefined ? ` · test RMSE ${i.metrics.test_rmse.toFixed(3)}` : "";
  $("run-info").textContent = `${i.model} on ${i.dataset} · ${i.movies.toLocaleString()} films${rmse}`;
  $("run-info").title = `run ${i.run}`;
  for (const g of i.genres) {
    const o = el("option", null, g);
    o.value = g;
    $("genre").append(o);
  }
  $("min-ratings").value = i.defaults.min_ratings;
  if (i.years) {
    for (const id of ["year-from", "year-to"]) {
      $(id).min = i.years[0];
      $(id).max = i.years[1];
    }
    $("year-from").placeholder = i.years[0];
    $("year-to").placeholder = i.years[1];
  }
  if (!i.supports.includes("like")) {
    $("search-help").textContent = `This ${i.model} run cannot fold in a made-up user's ratings; it lists popular films.`;
  }
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(search, 120);
  });
  for (const id of ["genre", "year-from", "year-to", "min-ratings"]) $(id).addEventListener("change", schedule);
  $("similar-close").addEventListener("click", () => $("similar").close());
  $("similar").addEventListener("click", (e) => { if (e.target === $("similar")) $("similar").close(); });
  restore();
  renderRated();
  refresh();
}

document.addEventListener("DOMContentLoaded", start);
