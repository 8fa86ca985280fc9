import '../../shared/polyfills.js';
