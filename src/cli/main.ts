/**
 * The `netfence` command: thin over the public API.
 */
const [cmd] = process.argv.slice(2);
if (!cmd || cmd === '--help' || cmd === '-h') {
  console.log('usage: netfence <command>\n\ncommands:\n  capabilities [--json] [--netns NAME]   what this host supports');
  process.exit(cmd ? 0 : 1);
}
console.error(`netfence: unknown command '${cmd}'`);
process.exit(2);
