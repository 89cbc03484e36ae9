/**
 * The demo's simulated Google, loaded by package name when the demo starts. It is the workspace
 * package `@ga-collector/fake-google` (packages/fake-google), an optional dependency of
 * ga-collector: `npm ci --omit=optional`, as the Docker image and the systemd install run it,
 * leaves it out, and then `ga-collector demo` is the one command that cannot work.
 */
const FAKE_GOOGLE_PACKAGE = '@ga-collector/fake-google';

/** The package is not installed, or installed but not built; the message says which and what to do. */
class DemoDependencyMissing extends Error {
  override name = 'DemoDependencyMissing';
}

/**
 * Imports `@ga-collector/fake-google`.
 * @throws DemoDependencyMissing when Node cannot find the package (left out by `--omit=optional`)
 *   or its built files (`npm run build` not run); any other failure of the import as it is.
 */
export async function loadFakeGoogle(): Promise<typeof import('@ga-collector/fake-google')> {
  try {
    return await import('@ga-collector/fake-google');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    // Node: "Cannot find package '<name>' imported from ..." when it is not installed, "Cannot find
    // module '<path>/dist/index.js' ..." when it is installed but its exports point at nothing yet
    if ((err as Error).message.includes(`'${FAKE_GOOGLE_PACKAGE}'`)) {
      throw new DemoDependencyMissing(
        `the demo needs the optional dependencies: its simulated Google is the package ${FAKE_GOOGLE_PACKAGE}, which this installation left out (npm ci --omit=optional, as the Docker image and the systemd install run it); run the demo from a checkout of the repository: npm ci && npm run demo`,
      );
    }
    throw new DemoDependencyMissing(`the demo's simulated Google (${FAKE_GOOGLE_PACKAGE}) is installed but not built; run \`npm run build\` first`);
  }
}
