/* One entry point per subcommand; each gets argv starting at the subcommand name. */
#ifndef SD_CLI_H
#define SD_CLI_H

int cli_version(int argc, char **argv);
int cli_synth(int argc, char **argv);    /* src/cli/synth.c */
int cli_validate(int argc, char **argv); /* src/cli/validate.c */
int cli_simulate_text(int argc, char **argv); /* src/cli/simulate_text.c */
int cli_text_features(int argc, char **argv); /* src/cli/text_features.c */
int cli_import_mmsa(int argc, char **argv); /* src/cli/import_mmsa.c */
int cli_audio_features(int argc, char **argv); /* src/cli/audio_features.c */
int cli_prepare(int argc, char **argv); /* src/cli/prepare.c */

int cli_train(int argc, char **argv);    /* src/cli/train.c */
int cli_eval(int argc, char **argv);     /* src/cli/eval.c */
int cli_predict(int argc, char **argv);  /* src/cli/predict.c */
int cli_predict_one(int argc, char **argv); /* src/cli/predict_one.c */
int cli_score(int argc, char **argv);    /* src/cli/score.c */
int cli_robustness(int argc, char **argv); /* src/cli/robustness.c */
int cli_compare(int argc, char **argv);  /* src/cli/compare.c */
int cli_train_seeds(int argc, char **argv); /* src/cli/train_seeds.c: train --seeds */

#endif
