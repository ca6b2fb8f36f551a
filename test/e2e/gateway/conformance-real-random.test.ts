import { realPartsConformance } from './support/real-parts.js';

realPartsConformance('random');
