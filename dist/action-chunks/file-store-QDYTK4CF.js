import { createRequire as __mgCreateRequire } from 'node:module'; const require = __mgCreateRequire(import.meta.url);
import{a,b}from"./chunk-GP7OXG2V.js";import"./chunk-YS6C2KJQ.js";import"./chunk-E3DFD3LW.js";import"./chunk-QLGBKHNL.js";import"./chunk-7GQSVGXB.js";import"./chunk-ZHPVUCUV.js";export{a as FileStore,b as conflict};
