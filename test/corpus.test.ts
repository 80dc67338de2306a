/**
 * The hostile-box corpus, part 1 of 3 (test/corpus-suite.ts says what is checked).
 */
import { hostileCorpus } from './corpus-suite.js';

hostileCorpus(0, 3);
