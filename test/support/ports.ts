// Tests pick free ports the same way `tierfs up` does.
export { freeLoopbackPort as freePort } from '../../cli/cluster-ops.js';
