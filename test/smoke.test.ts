import t from 'tap';
import { canonicalJson } from '../src/shared/json.js';
t.equal(canonicalJson({ b: 1, a: [1, 'x'] }), '{"a":[1,"x"],"b":1}');
