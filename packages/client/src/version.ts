/** The library's own version, sent as `context.library.version`. A test keeps it equal to package.json's. */
export const LIBRARY_VERSION = '0.1.0';
