// Second process for test/kernel/xdp-blocklist.test.ts: re-opens a pinned
// blocklist by name and prints what it sees as JSON. argv: iface netns name [add-entry]
import { XdpBlocklist } from '../../src/index.js';

const [iface, netns, name, addEntry] = process.argv.slice(2) as [string, string, string, string | undefined];
const bl = new XdpBlocklist({ iface, netns, name });
if (addEntry) (await bl.add([addEntry])).unwrap();
const list = (await bl.list()).unwrap();
const stats = (await bl.stats()).unwrap();
console.log(JSON.stringify({ backend: bl.backend, list: list.map((e) => e.entry).sort(), dropped: stats.dropped.packets }));
bl.close();
