// The benchmark workload written as a typical user of Klaviyo's official Node SDK (klaviyo-api,
// pinned in package-lock.json) would: `node workload.mjs seq|all BASE_URL KEY T L I`.
// seq: one request after another; all: everything at once with Promise.all. The SDK's own retry
// (429/503/504/524, three attempts) is left as shipped. The base URL is set through each API
// class's `basePath` setter (the SDK's default is https://a.klaviyo.com).
// Prints one line: wall_ms=... ok=... failed=...
import { ApiKeySession, TemplatesApi, ListsApi, CatalogsApi } from 'klaviyo-api';

const [mode, base, key, nt, nl, ni] = process.argv.slice(2);
const session = new ApiKeySession(key);
const templates = new TemplatesApi(session);
const lists = new ListsApi(session);
const catalogs = new CatalogsApi(session);
for (const api of [templates, lists, catalogs]) api.basePath = base;

let ok = 0;
let failed = 0;
const count = (p) => p.then(() => { ok++; }, () => { failed++; });

const template = (i) => templates.createTemplate({
  data: { type: 'template', attributes: { name: `Node T${i}`, editorType: 'CODE', html: `<p>${i}</p>` } },
});
const list = (i) => lists.createList({ data: { type: 'list', attributes: { name: `Node L${i}` } } });
const item = async (i) => {
  await catalogs.createCatalogItem({
    data: {
      type: 'catalog-item',
      attributes: { externalId: `NODE-${i}`, title: `Item ${i}`, description: 'd', url: `https://example.com/i/${i}`, price: 9.5 },
    },
  });
  ok++;
  const id = `$custom:::$default:::NODE-${i}`;
  await catalogs.updateCatalogItem(id, { data: { type: 'catalog-item', id, attributes: { price: 10 + i } } });
};
const itemCounted = (i) => item(i).then(() => { ok++; }, () => { failed++; });

const start = Date.now();
if (mode === 'seq') {
  for (let i = 0; i < +nt; i++) await count(template(i));
  for (let i = 0; i < +nl; i++) await count(list(i));
  for (let i = 0; i < +ni; i++) await itemCounted(i);
} else {
  const all = [];
  for (let i = 0; i < +nt; i++) all.push(count(template(i)));
  for (let i = 0; i < +nl; i++) all.push(count(list(i)));
  for (let i = 0; i < +ni; i++) all.push(itemCounted(i));
  await Promise.all(all);
}
console.log(`wall_ms=${Date.now() - start} ok=${ok} failed=${failed}`);
