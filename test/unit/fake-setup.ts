/**
 * Imported FIRST by the FakeHost orchestration tests: the executor's journal
 * and its cross-process lock still use node:fs directly (not host.files), so
 * they are pointed at private temporary directories before netfence's
 * modules read their settings. Nothing of the machine is touched.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

process.env.NETFENCE_JOURNAL_DIR = mkdtempSync(join(tmpdir(), 'netfence-fake-journal-'));
process.env.NETFENCE_LOCK_DIR = mkdtempSync(join(tmpdir(), 'netfence-fake-lock-'));
