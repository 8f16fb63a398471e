// Registers every gradient rule (each module calls registerGrad for its ops).
import './elementwise';
import './reduce';
import './shape';
