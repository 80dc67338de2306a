/**
 * The hostile-box corpus, part 3 of 3 (test/corpus-suite.ts says what is checked).
 */
import { hostileCorpus } from './corpus-suite.js';

hostileCorpus(2, 3);
