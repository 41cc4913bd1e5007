#!/usr/bin/env node
import { runDemo } from './demo/lifecycle.js';

process.exitCode = await runDemo({ dir: process.argv[2] });
