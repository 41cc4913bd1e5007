import { createRequire as __mgCreateRequire } from 'node:module'; const require = __mgCreateRequire(import.meta.url);
import{a,b,c}from"./chunk-BN5T6ARK.js";import"./chunk-7GQSVGXB.js";import"./chunk-ZHPVUCUV.js";export{b as displayPath,a as formatProblem,c as sortProblems};
