const box = document.querySelector("div.search");
const input = box.querySelector("input");
const list = box.querySelector("ol");
let loading;
function pagefind() {
  // Loaded on first use, with every language of the index: a Russian page finds English summaries too.
  loading ??= (async () => {
    const bundle = box.dataset.bundle;
    const found = await import(bundle + "pagefind.js");
    await found.options({ excerptLength: 24 });
    const entry = await (await fetch(bundle + "pagefind-entry.json")).json();
    const own = document.documentElement.lang;
    for (const language of Object.keys(entry.languages || {})) {
      // The same bundle by another spelling of its path: Pagefind skips a merge of its primary index's own.
      if (language !== own) await found.mergeIndex(bundle + "./", { language });
    }
    return found;
  })();
  return loading;
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
  const search = await index.debouncedSearch(query, {}, 200);
  if (search === null) return;
  const results = query ? await Promise.all(search.results.slice(0, 10).map((result) => result.data())) : [];
  list.replaceChildren(...results.map(item));
  if (query && !results.length) list.append(Object.assign(document.createElement("li"), { textContent: box.dataset.nothing }));
});
box.querySelector("form").addEventListener("submit", (event) => event.preventDefault());
document.querySelector("nav.site .search-link").hidden = true;
box.hidden = false;
