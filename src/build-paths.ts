// Files the package builds at install time, located relative to this module (src/ or dist/).
// Its own module so the poll thread can find the helper without loading the flag parser.

import { fileURLToPath } from 'node:url';

/** Where `npm ci` (scripts/build-native.sh) puts the netlink helper, relative to this package. */
export const DEFAULT_NETLINK_HELPER = fileURLToPath(new URL('../build/tcpstate-diag', import.meta.url));
