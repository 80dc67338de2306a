/**
 * The Vagrant plugin against hostile boxes, kills, a hostile user ID and
 * credentials, with the real vagrant run as an unprivileged user (made with useradd when the tests run as root). The tests are in test/vagrant-hostile-suite.ts.
 */
import { hostileSuite } from './vagrant-hostile-suite.js';

hostileSuite('user');
