import { createRequire as __mgCreateRequire } from 'node:module'; const require = __mgCreateRequire(import.meta.url);
import{a,b,c,d}from"./chunk-XPHILMZ2.js";import"./chunk-E3DFD3LW.js";import"./chunk-QLGBKHNL.js";import"./chunk-7GQSVGXB.js";import"./chunk-ZHPVUCUV.js";export{c as MAX_PRESIGN_SECONDS,a as openStore,d as presignGet,b as requireKey};
