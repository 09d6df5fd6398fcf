import './base.css';
import './experiments.css';
import './lineage.css';
import './sweep.css';
