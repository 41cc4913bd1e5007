import { createRequire as __mgCreateRequire } from 'node:module'; const require = __mgCreateRequire(import.meta.url);
import{a,b,c,d}from"./chunk-KZBQF5V3.js";import"./chunk-333YZ5UX.js";import"./chunk-FF7BKTKR.js";import"./chunk-7GQSVGXB.js";import"./chunk-ZHPVUCUV.js";export{c as MAX_PRESIGN_SECONDS,a as openStore,d as presignGet,b as requireKey};
