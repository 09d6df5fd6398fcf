import './base.css';
import './experiments.css';
import './lineage.css';
