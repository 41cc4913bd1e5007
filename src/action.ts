// PLACEHOLDER until the gate engineer's Action lands.
import { setFailed } from '@actions/core';
setFailed('modelgate action: not built yet');
