/**
 * A pipeline of discover and one `shell` task, `slow`, over the rig's sample (test/helpers/rig.ts):
 * `command` runs with `{outputs}` = slow.txt; `stage` adds lines to the stage (indented 4).
 */
export const shellPipeline = (command: string, stage = ''): string => `version: 1
dataset:
  repo: bigcode/the-stack-v2
  revision: sample-v1
  source: file://hf
  languages: [Python]
content:
  source: file://swh/content
tasks:
  discover: { kind: discover }
  slow:
    kind: shell
${stage}    params:
      command: '${command}'
      outputs: ['slow.txt']
`;
