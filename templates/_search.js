const box = document.querySelector("div.search");
const input = box.querySelector("input");
const list = box.querySelector("ol");
let loading;
function loaded(languages, own) {
  // The language Pagefind picks for its first index, as it picks it: the page's, else the one of most pages.
  if (own in languages) return own;
  if (own.split("-")[0] in languages) return own.split("-")[0];
  return Object.keys(languages).sort((a, b) => languages[b] - languages[a])[0];
}
function pagefind() {
  // Loaded on first use: the newest bundle, then every other bundle and language merged into it, so results
  // are ranked across them all and a Russian page finds English summaries too.
  loading ??= (async () => {
    const root = box.dataset.bundle;
    const { bundles } = await (await fetch(root + "bundles.json", { cache: "no-cache" })).json();
    const [newest] = bundles;
    if (!newest) return null; // no summary left to search
    const found = await import(root + newest.name + "/pagefind.js");
    await found.options({ excerptLength: 24 });
    const first = loaded(newest.languages, (document.documentElement.lang || "unknown").toLowerCase());
    const merges = bundles.flatMap((bundle) =>
      Object.keys(bundle.languages)
        .filter((language) => bundle !== newest || language !== first)
        // The first bundle by another spelling of its path: Pagefind skips a merge of its first index's own.
        .map((language) => found.mergeIndex(root + bundle.name + (bundle === newest ? "/./" : "/"), { language })),
    );
    await Promise.all(merges);
    return found;
  })();
  return loading;
}
function shortened(data, words) {
  // Whether every word the hit matched is only the start of a word searched for ("к" for "квазикристаллами"):
  // Pagefind looks for a word an index lacks by ever shorter beginnings of it, so each bundle without the word
  // adds such hits, ranked under those that have it.
  const content = data.content.trim().split(/\s+/);
  return data.locations.every((at) => {
    const word = (content[at] || "").toLowerCase().replace(/[^\p{L}\p{N}]/gu, "");
    return words.some((searched) => searched.startsWith(word) && word.length < searched.length * 0.6);
  });
}
async function found(results, words) {
  // The first ten hits; once one matched a word in full, the shortened ones below it are left out.
  const kept = [];
  let full = false;
  for (let at = 0; at < results.length && kept.length < 10; at += 10) {
    for (const data of await Promise.all(results.slice(at, at + 10).map((result) => result.data()))) {
      const partial = shortened(data, words);
      if (!kept.length) full = !partial;
      if (full && partial) return kept;
      if (kept.length < 10) kept.push(data);
    }
  }
  return kept;
}
function item(data) {
  const li = document.createElement("li");
  const link = li.appendChild(document.createElement("a"));
  link.href = data.url;
  link.textContent = data.meta.title;
  const about = li.appendChild(document.createElement("p"));
  about.textContent = [data.meta.date, data.excerpt.replace(/<[^>]*>/g, "")].filter(Boolean).join(" · ");
  return li;
}
input.addEventListener("input", async () => {
  const query = input.value.trim();
  const index = await pagefind();
  const search = index && (await index.debouncedSearch(query, {}, 200));
  if (search === null) return;
  const results = query ? await found(search.results, query.toLowerCase().split(/\s+/)) : [];
  list.replaceChildren(...results.map(item));
  if (query && !results.length) list.append(Object.assign(document.createElement("li"), { textContent: box.dataset.nothing }));
});
box.querySelector("form").addEventListener("submit", (event) => event.preventDefault());
document.querySelector("nav.site .search-link").hidden = true;
box.hidden = false;
