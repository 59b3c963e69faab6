// The conformance suite against Azurite directly: the reference run that
// every case must pass before it is trusted against the proxy.
import { runAzuriteTarget } from "./lib/targets.mjs";

runAzuriteTarget();
