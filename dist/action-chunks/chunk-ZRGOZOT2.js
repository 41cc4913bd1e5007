import { createRequire as __mgCreateRequire } from 'node:module'; const require = __mgCreateRequire(import.meta.url);
var e=new Set;function o(n){return e.add(n),()=>e.delete(n)}export{o as a};
