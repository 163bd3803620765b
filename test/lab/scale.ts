/**
 * How much slower this run's machine is than a native one: 4 inside the
 * matrix's qemu VM (software emulation, NETFENCE_VM=1), else 1;
 * NETFENCE_TIMEOUT_SCALE overrides. vitest.config.ts stretches its timeouts by
 * the same factor. Use it for waiting windows (how long a client gets to start
 * and talk), never to loosen an assertion.
 */
export const timeScale = Number(process.env.NETFENCE_TIMEOUT_SCALE ?? (process.env.NETFENCE_VM ? 4 : 1));
