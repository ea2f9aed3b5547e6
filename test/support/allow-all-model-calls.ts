// For tests and benchmarks of the gateway and the agent themselves, where no
// broker runs: every model call is allowed. A host always brokers them
// (src/host/host-core.ts); a gateway without a hook refuses everything.
import type { AuthorizeHook } from '../../src/host/egress/gateway.ts';

export const ALLOW_ALL_MODEL_CALLS: AuthorizeHook = async () => {};
